/* Progress file of the simulator: JSON written atomically, read back for --resume. */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_FORMAT 1

static int get_u64(json_t *root, const char *name, uint64_t *out)
{
    const char *s = json_string_value(json_object_get(root, name));
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

int kf_sim_state_load(const char *path, kf_sim_state *out, kf_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return kf_error_set(err, KF_ERR_NOT_FOUND, false,
                                "no progress file \"%s\": nothing to resume", path);
        return kf_error_set(err, KF_ERR_IO, false, "could not open progress file \"%s\": %s", path,
                            strerror(errno));
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!root)
        return kf_error_set(err, KF_ERR_CONFIG, false, "%s:%d: not a progress file: %s", path,
                            jerr.line, jerr.text);
    memset(out, 0, sizeof(*out));
    uint64_t start, tick, batch, digest;
    const char *output = json_string_value(json_object_get(root, "output"));
    int rc = KF_OK;
    if (json_integer_value(json_object_get(root, "format")) != STATE_FORMAT ||
        get_u64(root, "seed", &out->seed) || get_u64(root, "start_us", &start) ||
        get_u64(root, "tick_us", &tick) || get_u64(root, "batch_size", &batch) ||
        get_u64(root, "spec_digest", &digest) || get_u64(root, "acked_seq", &out->acked_seq) ||
        !output || strlen(output) >= sizeof(out->output) || batch == 0 || batch > UINT32_MAX) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false,
                          "progress file \"%s\" is damaged or of another format: remove it to "
                          "start afresh",
                          path);
    } else {
        out->start_us = (int64_t)start;
        out->tick_us = (int64_t)tick;
        out->batch_size = (uint32_t)batch;
        out->spec_digest = digest;
        snprintf(out->output, sizeof(out->output), "%s", output);
    }
    json_decref(root);
    return rc;
}

int kf_sim_state_save(const char *path, const kf_sim_state *st, kf_error *err)
{
    char tmp[4096];
    char text[1024];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return kf_error_set(err, KF_ERR_IO, false, "could not write progress file: path too long");
    /* Numbers as strings: a 64-bit seed does not fit a JSON number everywhere. */
    int n =
        snprintf(text, sizeof(text),
                 "{\"format\":%d,\"seed\":\"%" PRIu64 "\",\"start_us\":\"%" PRIu64
                 "\",\"tick_us\":\"%" PRIu64 "\",\"batch_size\":\"%u\",\"spec_digest\":\"%" PRIu64
                 "\",\"output\":\"%s\",\"acked_seq\":\"%" PRIu64 "\"}\n",
                 STATE_FORMAT, st->seed, (uint64_t)st->start_us, (uint64_t)st->tick_us,
                 st->batch_size, st->spec_digest, st->output, st->acked_seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return kf_error_set(err, KF_ERR_IO, false, "could not write progress file \"%s\": %s", tmp,
                            strerror(errno));
    bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            saved = errno;
        unlink(tmp);
        return kf_error_set(err, KF_ERR_IO, false, "could not write progress file \"%s\": %s", path,
                            strerror(saved));
    }
    return KF_OK;
}

int kf_sim_state_check_resume(const kf_sim_state *prev, const kf_sim_state *want, bool seed_given,
                              const char *path, kf_error *err)
{
    if (seed_given && prev->seed != want->seed)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "cannot resume: the progress file \"%s\" is of seed %" PRIu64
                            ", not %" PRIu64,
                            path, prev->seed, want->seed);
    if (strcmp(prev->output, want->output) != 0)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "cannot resume: the progress file \"%s\" is of output %s, not %s", path,
                            prev->output, want->output);
    if (prev->spec_digest != want->spec_digest)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "cannot resume: the progress file \"%s\" was written with other "
                            "specs (the spec files or the strategy differ)",
                            path);
    if (prev->tick_us != want->tick_us)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "cannot resume: the progress file \"%s\" is of sim.tick.us %" PRId64
                            ", not %" PRId64,
                            path, prev->tick_us, want->tick_us);
    if (prev->batch_size != want->batch_size)
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "cannot resume: the progress file \"%s\" is of sim.batch.size %u, "
                            "not %u",
                            path, prev->batch_size, want->batch_size);
    return KF_OK;
}

int kf_sim_state_digest_file(const char *path, uint64_t *digest, kf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kf_error_set(err, KF_ERR_IO, false, "could not read spec file \"%s\": %s", path,
                            strerror(errno));
    unsigned char buf[8192];
    size_t n;
    uint64_t h = *digest;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 0x100000001b3ULL;
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed)
        return kf_error_set(err, KF_ERR_IO, false, "could not read spec file \"%s\"", path);
    *digest = h;
    return KF_OK;
}
