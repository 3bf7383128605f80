/* The built-in word lists behind the text generators. */
#include "words.h"

#include <pthread.h>
#include <string.h>

static const char *const first_names[] = {
    "James",     "Mary",     "Robert",    "Patricia", "John",     "Jennifer",  "Michael",
    "Linda",     "David",    "Elizabeth", "William",  "Barbara",  "Richard",   "Susan",
    "Joseph",    "Jessica",  "Thomas",    "Sarah",    "Charles",  "Karen",     "Daniel",
    "Lisa",      "Matthew",  "Nancy",     "Anthony",  "Betty",    "Mark",      "Sandra",
    "Donald",    "Ashley",   "Steven",    "Emily",    "Andrew",   "Kimberly",  "Paul",
    "Donna",     "Joshua",   "Michelle",  "Kenneth",  "Carol",    "Kevin",     "Amanda",
    "Brian",     "Melissa",  "Timothy",   "Deborah",  "Ronald",   "Stephanie", "Jason",
    "Rebecca",   "George",   "Laura",     "Edward",   "Helen",    "Jeffrey",   "Sharon",
    "Ryan",      "Cynthia",  "Jacob",     "Amy",      "Nicholas", "Angela",    "Gary",
    "Anna",      "Eric",     "Brenda",    "Jonathan", "Pamela",   "Stephen",   "Emma",
    "Larry",     "Nicole",   "Justin",    "Samantha", "Scott",    "Katherine", "Brandon",
    "Christine", "Benjamin", "Debra",     "Samuel",   "Rachel",   "Gregory",   "Carolyn",
    "Alexander", "Janet",    "Patrick",   "Maria",    "Frank",    "Olivia",    "Raymond",
    "Heather",   "Jack",     "Catherine", "Dennis",   "Diane",    "Jerry",     "Julie",
    "Tyler",     "Victoria", "Aaron",     "Joyce",    "Henry",    "Lauren",    "Lucas",
    "Sofia",     "Mateo",    "Chloe",     "Noah",     "Aisha",    "Hiro",      "Yuki",
    "Lars",      "Ingrid",   "Pierre",    "Amelie",   "Diego",    "Lucia",     "Omar",
    "Fatima",
};

static const char *const last_names[] = {
    "Smith",    "Johnson",   "Williams",   "Brown",     "Jones",    "Garcia",   "Miller",
    "Davis",    "Rodriguez", "Martinez",   "Hernandez", "Lopez",    "Gonzalez", "Wilson",
    "Anderson", "Thomas",    "Taylor",     "Moore",     "Jackson",  "Martin",   "Lee",
    "Perez",    "Thompson",  "White",      "Harris",    "Sanchez",  "Clark",    "Ramirez",
    "Lewis",    "Robinson",  "Walker",     "Young",     "Allen",    "King",     "Wright",
    "Scott",    "Torres",    "Nguyen",     "Hill",      "Flores",   "Green",    "Adams",
    "Nelson",   "Baker",     "Hall",       "Rivera",    "Campbell", "Mitchell", "Carter",
    "Roberts",  "Gomez",     "Phillips",   "Evans",     "Turner",   "Diaz",     "Parker",
    "Cruz",     "Edwards",   "Collins",    "Reyes",     "Stewart",  "Morris",   "Morales",
    "Murphy",   "Cook",      "Rogers",     "Gutierrez", "Ortiz",    "Morgan",   "Cooper",
    "Peterson", "Bailey",    "Reed",       "Kelly",     "Howard",   "Ramos",    "Kim",
    "Cox",      "Ward",      "Richardson", "Watson",    "Brooks",   "Chavez",   "Wood",
    "James",    "Bennett",   "Gray",       "Mendoza",   "Ruiz",     "Hughes",   "Price",
    "Alvarez",  "Castillo",  "Sanders",    "Patel",     "Myers",    "Long",     "Ross",
    "Foster",   "Jimenez",   "Schmidt",    "Muller",    "Rossi",    "Tanaka",   "Silva",
    "Novak",    "Larsen",    "Dubois",     "Kowalski",  "Ivanova",  "Okafor",   "Haddad",
};

static const char *const cities[] = {
    "New York",     "Los Angeles", "Chicago",     "Houston",    "Phoenix",     "Philadelphia",
    "San Antonio",  "San Diego",   "Dallas",      "Austin",     "Seattle",     "Denver",
    "Boston",       "Portland",    "Atlanta",     "Miami",      "Minneapolis", "Toronto",
    "Vancouver",    "Montreal",    "Mexico City", "Bogota",     "Lima",        "Santiago",
    "Buenos Aires", "Sao Paulo",   "London",      "Manchester", "Dublin",      "Paris",
    "Lyon",         "Berlin",      "Munich",      "Hamburg",    "Vienna",      "Zurich",
    "Amsterdam",    "Brussels",    "Madrid",      "Barcelona",  "Lisbon",      "Rome",
    "Milan",        "Stockholm",   "Oslo",        "Copenhagen", "Helsinki",    "Warsaw",
    "Prague",       "Budapest",    "Athens",      "Istanbul",   "Cairo",       "Lagos",
    "Nairobi",      "Cape Town",   "Dubai",       "Mumbai",     "Bangalore",   "Singapore",
    "Bangkok",      "Hong Kong",   "Seoul",       "Tokyo",      "Osaka",       "Sydney",
    "Melbourne",    "Auckland",
};

static const char *const countries[] = {
    "United States", "Canada",       "Mexico",    "Brazil",         "Argentina",
    "Chile",         "Colombia",     "Peru",      "United Kingdom", "Ireland",
    "France",        "Germany",      "Austria",   "Switzerland",    "Netherlands",
    "Belgium",       "Spain",        "Portugal",  "Italy",          "Sweden",
    "Norway",        "Denmark",      "Finland",   "Poland",         "Czechia",
    "Hungary",       "Greece",       "Turkey",    "Egypt",          "Nigeria",
    "Kenya",         "South Africa", "India",     "Singapore",      "Thailand",
    "Japan",         "South Korea",  "Australia", "New Zealand",    "United Arab Emirates",
};

static const char *const product_adjectives[] = {
    "Ergonomic", "Rustic",     "Sleek",       "Compact", "Wireless",    "Organic",    "Vintage",
    "Modern",    "Durable",    "Portable",    "Premium", "Classic",     "Smart",      "Handmade",
    "Recycled",  "Heavy-Duty", "Lightweight", "Deluxe",  "Minimalist",  "Waterproof", "Foldable",
    "Insulated", "Adjustable", "Eco",         "Ultra",   "Refurbished", "Gourmet",    "Solar",
};

static const char *const product_nouns[] = {
    "Chair",         "Table",     "Lamp",     "Keyboard", "Mouse",     "Headphones", "Backpack",
    "Bottle",        "Mug",       "Notebook", "Pen",      "Desk",      "Monitor",    "Speaker",
    "Charger",       "Cable",     "Jacket",   "Sneakers", "Watch",     "Wallet",     "Blender",
    "Kettle",        "Toaster",   "Pillow",   "Blanket",  "Towel",     "Umbrella",   "Tent",
    "Bicycle",       "Helmet",    "Camera",   "Tripod",   "Router",    "Drone",      "Skillet",
    "Cutting Board", "Plant Pot", "Candle",   "Rug",      "Bookshelf",
};

static const char *const companies[] = {
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Industries",
    "Hooli",
    "Stark Works",
    "Wayne Supply",
    "Cyberdyne",
    "Soylent Foods",
    "Vandelay Imports",
    "Wonka Sweets",
    "Tyrell Labs",
    "Massive Dynamic",
    "Aperture Tools",
    "Oscorp",
    "Blue Sun",
    "Gringotts Trust",
    "Monarch Goods",
    "Nakatomi Trading",
    "Pied Piper",
    "Bluth Company",
    "Dunder Paper",
    "Prestige Worldwide",
    "Sterling Partners",
    "Gekko Capital",
    "Northwind Traders",
    "Contoso",
    "Fabrikam",
    "Tailspin Toys",
    "Litware",
};

static const char *const email_domains[] = {
    "example.com", "example.org",  "example.net",  "mail.test",
    "inbox.test",  "post.example", "corp.example", "shop.test",
};

static const char *const common_words[] = {
    "the",      "quick",    "brown",    "fox",     "jumps",   "over",      "lazy",     "dog",
    "order",    "shipped",  "arrived",  "late",    "early",   "package",   "customer", "support",
    "great",    "quality",  "price",    "value",   "would",   "recommend", "again",    "service",
    "fast",     "delivery", "box",      "damaged", "perfect", "fit",       "color",    "size",
    "small",    "large",    "return",   "refund",  "request", "please",    "thanks",   "update",
    "account",  "address",  "changed",  "payment", "failed",  "retry",     "later",    "today",
    "tomorrow", "week",     "month",    "year",    "team",    "product",   "feature",  "works",
    "well",     "poorly",   "better",   "worse",   "than",    "expected",  "really",   "very",
    "not",      "and",      "but",      "with",    "without", "for",       "from",     "into",
    "under",    "near",     "after",    "before",  "during",  "while",     "because",  "although",
    "bright",   "quiet",    "heavy",    "light",   "warm",    "cold",      "soft",     "hard",
    "simple",   "clever",   "useful",   "strange", "happy",   "busy",      "ready",    "open",
    "city",     "river",    "mountain", "garden",  "kitchen", "office",    "window",   "door",
    "morning",  "evening",  "night",    "weekend", "holiday", "meeting",   "report",   "invoice",
    "check",    "confirm",  "cancel",   "deliver", "track",   "replace",   "repair",   "install",
};

static const struct {
    const char *const *words;
    size_t count;
} lists[KF_SIM_WORDS_COUNT_] = {
#define KF_SIM_LIST(a)                                                                             \
    {                                                                                              \
        a, sizeof(a) / sizeof(a[0])                                                                \
    }
    [KF_SIM_WORDS_FIRST_NAME] = KF_SIM_LIST(first_names),
    [KF_SIM_WORDS_LAST_NAME] = KF_SIM_LIST(last_names),
    [KF_SIM_WORDS_CITY] = KF_SIM_LIST(cities),
    [KF_SIM_WORDS_COUNTRY] = KF_SIM_LIST(countries),
    [KF_SIM_WORDS_PRODUCT_ADJECTIVE] = KF_SIM_LIST(product_adjectives),
    [KF_SIM_WORDS_PRODUCT_NOUN] = KF_SIM_LIST(product_nouns),
    [KF_SIM_WORDS_COMPANY] = KF_SIM_LIST(companies),
    [KF_SIM_WORDS_EMAIL_DOMAIN] = KF_SIM_LIST(email_domains),
    [KF_SIM_WORDS_COMMON] = KF_SIM_LIST(common_words),
#undef KF_SIM_LIST
};

size_t kf_sim_words_count(kf_sim_wordlist list)
{
    return lists[list].count;
}

const char *kf_sim_words_get(kf_sim_wordlist list, size_t i)
{
    return lists[list].words[i];
}

#define COUNT(a) (sizeof(a) / sizeof(a[0]))

/* Word lengths, per list; measured once. */
static size_t *lengths[KF_SIM_WORDS_COUNT_];
static size_t lengths_store[COUNT(first_names) + COUNT(last_names) + COUNT(cities) +
                            COUNT(countries) + COUNT(product_adjectives) + COUNT(product_nouns) +
                            COUNT(companies) + COUNT(email_domains) + COUNT(common_words)];
static pthread_once_t lengths_once = PTHREAD_ONCE_INIT;

static void measure_words(void)
{
    size_t used = 0;
    for (int l = 0; l < KF_SIM_WORDS_COUNT_; l++) {
        lengths[l] = lengths_store + used;
        for (size_t i = 0; i < lists[l].count; i++) {
            lengths_store[used++] = strlen(lists[l].words[i]);
        }
    }
}

const char *kf_sim_words_get_len(kf_sim_wordlist list, size_t i, size_t *len)
{
    pthread_once(&lengths_once, measure_words);
    *len = lengths[list][i];
    return lists[list].words[i];
}
