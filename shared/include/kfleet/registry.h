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
    long backoff_initial_ms; /* 0 = 100 */
    long backoff_max_ms;     /* 0 = 5000 */
} kf_registry_config;

/* Copies what it needs from cfg. Returns NULL and fills err on failure. */
kf_registry *kf_registry_new(const kf_registry_config *cfg, kf_error *err);
void kf_registry_destroy(kf_registry *r); /* NULL is a no-op */

/* Registers schema_json (an Avro schema) under subject; sets *id_out. An incompatible schema
 * is KF_ERR_INCOMPATIBLE (HTTP 409); other failures are KF_ERR_REGISTRY, retriable when a
 * later attempt may succeed. */
int kf_registry_register(kf_registry *r, const char *subject, const char *schema_json,
                         int32_t *id_out, kf_error *err);

/* Fetches the schema with this id, from the cache when seen before. *schema_json_out is
 * borrowed and stays valid until kf_registry_destroy. Unknown id: KF_ERR_NOT_FOUND. */
int kf_registry_get_by_id(kf_registry *r, int32_t id, const char **schema_json_out, kf_error *err);

/* Looks up whether schema_json is already registered under subject; sets id and version.
 * Not registered (or no such subject): KF_ERR_NOT_FOUND. */
int kf_registry_lookup(kf_registry *r, const char *subject, const char *schema_json,
                       int32_t *id_out, int *version_out, kf_error *err);

/* Asks whether schema_json is compatible with the latest version under subject. */
int kf_registry_test_compatibility(kf_registry *r, const char *subject, const char *schema_json,
                                   bool *compatible_out, kf_error *err);

/* Sets the subject's compatibility level ("BACKWARD", "FULL", "NONE", ...). */
int kf_registry_set_compatibility(kf_registry *r, const char *subject, const char *level,
                                  kf_error *err);

#endif
