/* Built-in word lists for realistic text: names, places, products, companies and common
 * English words. Static, read-only data. */
#ifndef KF_SIM_WORDS_H
#define KF_SIM_WORDS_H

#include <stddef.h>

typedef enum kf_sim_wordlist {
    KF_SIM_WORDS_FIRST_NAME = 0,
    KF_SIM_WORDS_LAST_NAME,
    KF_SIM_WORDS_CITY,
    KF_SIM_WORDS_COUNTRY,
    KF_SIM_WORDS_PRODUCT_ADJECTIVE,
    KF_SIM_WORDS_PRODUCT_NOUN,
    KF_SIM_WORDS_COMPANY,
    KF_SIM_WORDS_EMAIL_DOMAIN,
    KF_SIM_WORDS_COMMON,
    KF_SIM_WORDS_COUNT_,
} kf_sim_wordlist;

/* The number of words in a list (always > 0) and the i-th word (i < count). */
size_t kf_sim_words_count(kf_sim_wordlist list);
const char *kf_sim_words_get(kf_sim_wordlist list, size_t i);
/* The same word with its length in *len (the generators append words without strlen). */
const char *kf_sim_words_get_len(kf_sim_wordlist list, size_t i, size_t *len);

#endif
