/* An in-process fake schema registry (Confluent REST API subset) on an ephemeral loopback
 * port, for unit tests: counts requests, records the last one, injects failures. */
#ifndef KF_FAKE_REGISTRY_H
#define KF_FAKE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kfleet/registry.h"

typedef struct kf_fake_registry kf_fake_registry;

/* What the fake saw in the most recent request. */
typedef struct kf_fake_request {
    char method[16];
    char raw_path[512]; /* as sent on the wire: still percent-encoded, query stripped */
    char authorization[256];
    char content_type[128];
    char body[4096];
} kf_fake_request;

/* Starts the server on 127.0.0.1 with a kernel-chosen port; NULL on failure. */
kf_fake_registry *kf_fake_registry_start(void);
void kf_fake_registry_stop(kf_fake_registry *f); /* NULL is a no-op */

/* Starts a fake and a registry client on it: cfg (NULL: every default) with its url set to the
 * fake's. Returns the client and the fake in *fake, or NULL with nothing left running. Destroy
 * both with kf_fake_registry_client_destroy. */
kf_registry *kf_fake_registry_client_new(const kf_registry_config *cfg, kf_fake_registry **fake);

/* Destroys the client, then stops its fake; NULLs are no-ops. */
void kf_fake_registry_client_destroy(kf_registry *reg, kf_fake_registry *fake);

/* "http://127.0.0.1:<port>", borrowed until stop. */
const char *kf_fake_registry_url(const kf_fake_registry *f);

/* Answers the next `count` requests with `status` and a JSON error body, before routing. */
void kf_fake_registry_fail_next(kf_fake_registry *f, int count, int status);

/* Delays every answer by ms (0 = none), to exercise client timeouts. */
void kf_fake_registry_set_delay_ms(kf_fake_registry *f, long ms);

/* Schemas whose text contains marker are incompatible with any subject that has versions:
 * registering them is HTTP 409, testing them says is_compatible false. Copies marker. */
void kf_fake_registry_set_incompatible_marker(kf_fake_registry *f, const char *marker);

/* Stores a schema under a fixed id with a schemaType (NULL = field omitted). Copies both.
 * False when the fake is full or out of memory. */
bool kf_fake_registry_add_schema(kf_fake_registry *f, int32_t id, const char *schema,
                                 const char *type);

/* Number of HTTP requests answered so far. */
unsigned kf_fake_registry_requests(kf_fake_registry *f);

/* Copies the last request into *out; false if there was none. */
bool kf_fake_registry_last(kf_fake_registry *f, kf_fake_request *out);

/* The compatibility level last set on subject, copied into out (empty if none). */
void kf_fake_registry_compatibility(kf_fake_registry *f, const char *subject, char *out,
                                    size_t out_size);

#endif
