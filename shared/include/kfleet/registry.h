/* Client for a schema registry speaking the Confluent REST API (Confluent, Apicurio ccompat,
 * Karapace, Redpanda), with an id -> schema cache and retries on transient failures. */
#ifndef KFLEET_REGISTRY_H
#define KFLEET_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "kfleet/error.h"

typedef struct kf_registry kf_registry;

typedef struct kf_registry_config {
    const char *url;         /* base URL, e.g. http://127.0.0.1:18081/apis/ccompat/v7 */
    const char *username;    /* basic auth; NULL for none */
    const char *password;    /* basic auth; NULL for none */
    long timeout_ms;         /* per request; 0 = 10000 */
    int max_retries;         /* on connection errors and 5xx; 0 = 5, negative = none */
    long backoff_initial_ms; /* shortest delay between attempts; 0 = 100 */
    long backoff_max_ms;     /* cap on a delay; 0 = 5000 (raised to backoff_initial_ms) */
    int subject_cache_max;   /* (subject, schema) -> id pairs kept, then all dropped; 0 = 4096 */
} kf_registry_config;

/* Counters since kf_registry_new, for metrics and tests. */
typedef struct kf_registry_stats {
    uint64_t http_requests; /* HTTP attempts made, retries included */
    uint64_t retries;       /* attempts that repeated a failed one */
    uint64_t cache_hits;    /* calls answered from a cache without any request */
} kf_registry_stats;

/* Copies what it needs from cfg (cfg and its strings may be freed afterwards). A missing or
 * non-http(s) url or a negative number is KF_ERR_CONFIG. Returns NULL and fills err
 * on failure. All functions below are thread-safe; subjects are URL-encoded by the client.
 * Every failing call fills err with a message naming the subject or id and the URL path. */
kf_registry *kf_registry_new(const kf_registry_config *cfg, kf_error *err);
void kf_registry_destroy(kf_registry *r); /* NULL is a no-op */

/* Registers schema_json (an Avro schema) under subject; sets *id_out. An incompatible schema
 * is KF_ERR_INCOMPATIBLE (HTTP 409); other failures are KF_ERR_REGISTRY, retriable when a
 * later attempt may succeed. A (subject, schema text) pair registered or looked up before is
 * answered from the cache without a request. Connection errors and HTTP 5xx are retried with
 * capped exponential backoff and jitter; 4xx answers are not retried. */
int kf_registry_register(kf_registry *r, const char *subject, const char *schema_json,
                         int32_t *id_out, kf_error *err);

/* Fetches the schema with this id, from the cache when seen before (a cache hit makes no
 * request and allocates nothing; cached schemas are kept for the client's lifetime).
 * *schema_json_out is borrowed and stays valid until kf_registry_destroy. Unknown id:
 * KF_ERR_NOT_FOUND. A schema that is not Avro (schemaType JSON or PROTOBUF) is KF_ERR_DECODE. */
int kf_registry_get_by_id(kf_registry *r, int32_t id, const char **schema_json_out, kf_error *err);

/* Looks up whether schema_json is already registered under subject; sets id and version
 * (version_out may be NULL). Cached like kf_registry_register once found.
 * Not registered (or no such subject): KF_ERR_NOT_FOUND. */
int kf_registry_lookup(kf_registry *r, const char *subject, const char *schema_json,
                       int32_t *id_out, int *version_out, kf_error *err);

/* Asks whether schema_json is compatible with the latest version under subject, under the
 * subject's compatibility level. Not cached. For a subject without versions Confluent answers
 * KF_ERR_NOT_FOUND while Apicurio answers compatible. */
int kf_registry_test_compatibility(kf_registry *r, const char *subject, const char *schema_json,
                                   bool *compatible_out, kf_error *err);

/* Sets the subject's compatibility level: BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
 * FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE or NONE; any other level is KF_ERR_INVALID
 * without a request. */
int kf_registry_set_compatibility(kf_registry *r, const char *subject, const char *level,
                                  kf_error *err);

/* Deletes subject with every version of it. Without permanent it is a soft delete (the
 * registry keeps the versions, hidden); with permanent the versions are removed for good (a
 * soft delete is sent first, as the Confluent API requires; a subject already soft-deleted is
 * fine). Forgets the subject's cached (subject, schema) pairs, so a later registration reaches
 * the registry. No such subject (or, without permanent, one already soft-deleted):
 * KF_ERR_NOT_FOUND. */
int kf_registry_delete_subject(kf_registry *r, const char *subject, bool permanent, kf_error *err);

/* Copies the counters into *out. Thread-safe. */
void kf_registry_get_stats(kf_registry *r, kf_registry_stats *out);

#endif
