/* Batch validation for CI gates: reads a bounded topic range (assigned partitions, no group
 * commits) or a JSON-lines / CSV file, checks every record once and reports per rule. */
#include "check.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "kfleet/event.h"
#include "kfleet/kafka.h"
#include "kfleet/retry.h"
#include "kfleet/serde.h"
#include "kfleet/wire.h"
#include "rules.h"

#define MAX_EXAMPLES  3
#define MAX_BREACHES  100
#define MAX_CSV_COLS  1024
#define LOCATION_SIZE 64

typedef struct example {
    char location[LOCATION_SIZE];
    char message[512];
} example;

typedef struct rule_report {
    uint64_t violations;
    example ex[MAX_EXAMPLES];
    size_t nex;
} rule_report;

typedef struct breach_report {
    const kf_rule *rule;
    int64_t rows, start, end;
} breach_report;

typedef struct report {
    const kf_contract *c;
    rule_report *rules;
    uint64_t records, skipped, undecodable;
    example undecodable_ex[MAX_EXAMPLES];
    size_t nundecodable_ex;
    breach_report breaches[MAX_BREACHES];
    size_t nbreaches;
    char location[LOCATION_SIZE]; /* of the record being checked */
} report;

static void on_violation(void *ctx, const kf_rule *rule, const char *message)
{
    report *r = ctx;
    rule_report *rr = &r->rules[rule - r->c->rules];
    rr->violations++;
    if (rr->nex < MAX_EXAMPLES) {
        snprintf(rr->ex[rr->nex].location, LOCATION_SIZE, "%s", r->location);
        snprintf(rr->ex[rr->nex].message, sizeof(rr->ex[0].message), "%s", message);
        rr->nex++;
    }
}

static void on_breach(void *ctx, const kf_rule *rule, int64_t rows, int64_t start, int64_t end)
{
    report *r = ctx;
    if (r->nbreaches < MAX_BREACHES)
        r->breaches[r->nbreaches++] = (breach_report){rule, rows, start, end};
}

/* ---- times ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int kf_check_parse_time(const char *s, int64_t *ms)
{
    size_t len = strlen(s);
    bool date_only = kf_parse_is_date(s, len);
    if (!date_only && !kf_parse_is_timestamp(s, len))
        return KF_ERR_INVALID;
    int64_t y = strtol(s, NULL, 10);
    unsigned mo = (unsigned)strtoul(s + 5, NULL, 10), d = (unsigned)strtoul(s + 8, NULL, 10);
    int64_t t = days_from_civil(y, mo, d) * 86400000;
    if (date_only) {
        *ms = t;
        return KF_OK;
    }
    t += strtol(s + 11, NULL, 10) * 3600000 + strtol(s + 14, NULL, 10) * 60000;
    const char *p = s + 16;
    if (*p == ':') {
        t += strtol(p + 1, NULL, 10) * 1000;
        p += 3;
        if (*p == '.') {
            int scale = 100;
            for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
                t += (*p - '0') * scale;
        }
    }
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int64_t off = strtol(p + 1, NULL, 10) * 60;
        const char *mm = p + 3;
        if (*mm == ':')
            mm++;
        if (isdigit((unsigned char)*mm))
            off += strtol(mm, NULL, 10);
        t -= sign * off * 60000;
    }
    *ms = t;
    return KF_OK;
}

/* ---- files ---- */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* Cells of one JSON object for the contract columns; strings of nested values are kept in
 * owned[] until the record is checked. */
static int json_row(report *rep, kf_rules *rules, json_t *obj, size_t line, kf_cell *cells,
                    const kf_cell **ptrs, char **owned)
{
    const kf_contract *c = rep->c;
    json_t *row = obj;
    json_t *type = json_object_get(obj, "type");
    if (type && json_is_string(type) && strcmp(json_string_value(type), "change") != 0) {
        rep->skipped++;
        return KF_OK;
    }
    json_t *after = json_object_get(obj, "after");
    json_t *op = json_object_get(obj, "op");
    if (after || op) {
        const char *ops = json_is_string(op) ? json_string_value(op) : "";
        if (!json_is_object(after) || strcmp(ops, "d") == 0 || strcmp(ops, "t") == 0) {
            rep->skipped++;
            return KF_OK;
        }
        row = after;
    }
    for (size_t i = 0; i < c->ncolumns; i++) {
        json_t *v = json_object_get(row, c->columns[i]);
        owned[i] = NULL;
        ptrs[i] = v ? &cells[i] : NULL;
        if (!v)
            continue;
        switch (json_typeof(v)) {
        case JSON_NULL:
            cells[i] = (kf_cell){.kind = KF_CELL_NULL};
            break;
        case JSON_INTEGER:
            cells[i] = (kf_cell){.kind = KF_CELL_INT, .v.i = json_integer_value(v)};
            break;
        case JSON_REAL:
            cells[i] = (kf_cell){.kind = KF_CELL_DOUBLE, .v.d = json_real_value(v)};
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            cells[i] = (kf_cell){.kind = KF_CELL_BOOL, .v.b = json_is_true(v)};
            break;
        case JSON_STRING:
            cells[i] = (kf_cell){.kind = KF_CELL_STRING,
                                 .v.s = {json_string_value(v), json_string_length(v)}};
            break;
        default:
            owned[i] = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            if (!owned[i])
                return KF_ERR_NOMEM;
            cells[i] = (kf_cell){.kind = KF_CELL_STRING, .v.s = {owned[i], strlen(owned[i])}};
            break;
        }
    }
    int64_t ts = 0;
    json_t *tsv = json_object_get(obj, "ts_ms");
    json_t *tss = json_object_get(obj, "ts");
    if (json_is_integer(tsv))
        ts = json_integer_value(tsv);
    else if (json_is_string(tss))
        kf_check_parse_time(json_string_value(tss), &ts);
    uint64_t key = 0;
    json_t *k = json_object_get(obj, "key");
    if (k && after) {
        char *dump = json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!dump)
            return KF_ERR_NOMEM;
        for (const char *p = dump; *p; p++)
            key = (key ^ (unsigned char)*p) * 0x100000001b3ull;
        key = key ? key : 1;
        free(dump);
    }
    snprintf(rep->location, LOCATION_SIZE, "line %zu", line);
    kf_row r = {.cells = ptrs, .row_key = key, .ts_ms = ts};
    kf_verdict vd;
    rep->records++;
    return kf_rules_check(rules, &r, &vd);
}

static int check_jsonl(report *rep, kf_rules *rules, FILE *f, const char *path, kf_error *err)
{
    size_t nc = rep->c->ncolumns ? rep->c->ncolumns : 1;
    kf_cell *cells = calloc(nc, sizeof(*cells));
    const kf_cell **ptrs = calloc(nc, sizeof(*ptrs));
    char **owned = calloc(nc, sizeof(*owned));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = KF_OK;
    if (!cells || !ptrs || !owned) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a row");
        goto out_free_row;
    }
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t i = 0;
        while (i < (size_t)n && isspace((unsigned char)line[i]))
            i++;
        if (i == (size_t)n)
            continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)n, 0, &jerr);
        if (!obj || !json_is_object(obj)) {
            json_decref(obj);
            rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s:%zu: %s", path, lineno,
                              obj ? "a line must hold a JSON object" : jerr.text);
            goto out_free_row;
        }
        rc = json_row(rep, rules, obj, lineno, cells, ptrs, owned);
        for (size_t c = 0; c < rep->c->ncolumns; c++) {
            free(owned[c]);
            owned[c] = NULL;
        }
        json_decref(obj);
        if (rc != KF_OK) {
            kf_error_set(err, rc, false, "%s:%zu: could not check the record (%s)", path, lineno,
                         kf_err_name(rc));
            goto out_free_row;
        }
    }
    if (ferror(f))
        rc =
            kf_error_set(err, KF_ERR_IO, false, "could not read \"%s\": %s", path, strerror(errno));

out_free_row:
    free(line);
    free(cells);
    free(ptrs);
    free(owned);
    return rc;
}

/* One CSV record (RFC 4180; fields may span lines inside quotes) into fields[]. A field that is
 * empty and unquoted is NULL (SQL null); *quoted marks quoted fields. Returns the number of
 * fields, 0 at end of file, or -1 on a malformed record. */
static int csv_record(FILE *f, char **buf, size_t *cap, char **fields, size_t max, size_t *lines)
{
    size_t len = 0, nf = 0;
    size_t starts[MAX_CSV_COLS];
    bool nulls[MAX_CSV_COLS];
    bool in_quotes = false, quoted = false, any = false;
    int ch;
    starts[0] = 0;
    for (;;) {
        ch = fgetc(f);
        if (ch == EOF && !any)
            return 0;
        any = true;
        if (len + 2 > *cap) {
            size_t ncap = *cap ? *cap * 2 : 4096;
            char *g = realloc(*buf, ncap);
            if (!g)
                return -1;
            *buf = g;
            *cap = ncap;
        }
        if (in_quotes) {
            if (ch == EOF)
                return -1;
            if (ch == '"') {
                int next = fgetc(f);
                if (next == '"') {
                    (*buf)[len++] = '"';
                } else {
                    in_quotes = false;
                    if (next != EOF)
                        ungetc(next, f);
                }
            } else {
                if (ch == '\n')
                    (*lines)++;
                (*buf)[len++] = (char)ch;
            }
            continue;
        }
        if (ch == '"' && len == starts[nf]) {
            in_quotes = quoted = true;
            continue;
        }
        if (ch == ',' || ch == '\n' || ch == EOF) {
            if (nf >= max || nf >= MAX_CSV_COLS)
                return -1;
            if (len > starts[nf] && (*buf)[len - 1] == '\r' && ch == '\n')
                len--;
            nulls[nf] = !quoted && len == starts[nf];
            (*buf)[len++] = '\0';
            nf++;
            quoted = false;
            if (ch != ',') {
                (*lines)++;
                break;
            }
            starts[nf] = len;
            continue;
        }
        (*buf)[len++] = (char)ch;
    }
    for (size_t i = 0; i < nf; i++)
        fields[i] = nulls[i] ? NULL : *buf + starts[i];
    return (int)nf;
}

static int check_csv(report *rep, kf_rules *rules, FILE *f, const char *path, kf_error *err)
{
    const kf_contract *c = rep->c;
    char *buf = NULL, *hbuf = NULL;
    size_t cap = 0, hcap = 0, lines = 0;
    char *header[MAX_CSV_COLS], *fields[MAX_CSV_COLS];
    size_t nc = c->ncolumns ? c->ncolumns : 1;
    int *pos = calloc(nc, sizeof(*pos));
    kf_cell *cells = calloc(nc, sizeof(*cells));
    const kf_cell **ptrs = calloc(nc, sizeof(*ptrs));
    int rc = KF_OK;
    if (!pos || !cells || !ptrs) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate a row");
        goto out_free;
    }
    int nh = csv_record(f, &hbuf, &hcap, header, MAX_CSV_COLS, &lines);
    if (nh <= 0) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s:1: %s", path,
                          nh == 0 ? "the file is empty: a header row is required"
                                  : "malformed header row");
        goto out_free;
    }
    for (size_t i = 0; i < c->ncolumns; i++) {
        pos[i] = -1;
        for (int j = 0; j < nh; j++)
            if (header[j] && strcmp(header[j], c->columns[i]) == 0)
                pos[i] = j;
    }
    for (;;) {
        size_t start_line = lines + 1;
        int nf = csv_record(f, &buf, &cap, fields, MAX_CSV_COLS, &lines);
        if (nf == 0)
            break;
        if (nf < 0) {
            rc = kf_error_set(err, KF_ERR_CONFIG, false, "%s:%zu: malformed CSV record", path,
                              start_line);
            goto out_free;
        }
        if (nf == 1 && !fields[0])
            continue; /* a blank line */
        if (nf != nh) {
            rc = kf_error_set(err, KF_ERR_CONFIG, false,
                              "%s:%zu: record has %d fields, the header has %d", path, start_line,
                              nf, nh);
            goto out_free;
        }
        for (size_t i = 0; i < c->ncolumns; i++) {
            if (pos[i] < 0) {
                ptrs[i] = NULL;
                continue;
            }
            const char *s = fields[pos[i]];
            cells[i] = s ? (kf_cell){.kind = KF_CELL_STRING, .v.s = {s, strlen(s)}}
                         : (kf_cell){.kind = KF_CELL_NULL};
            ptrs[i] = &cells[i];
        }
        snprintf(rep->location, LOCATION_SIZE, "line %zu", start_line);
        kf_row row = {.cells = ptrs};
        kf_verdict vd;
        rep->records++;
        if ((rc = kf_rules_check(rules, &row, &vd)) != KF_OK) {
            kf_error_set(err, rc, false, "%s:%zu: could not check the record", path, start_line);
            goto out_free;
        }
    }

out_free:
    free(buf);
    free(hbuf);
    free(pos);
    free(cells);
    free(ptrs);
    return rc;
}

/* ---- topics ---- */

/* An offset ("1234") or a time; *is_time says which. */
static int parse_bound(const char *s, int64_t *v, bool *is_time)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s && !*end && !errno && n >= 0) {
        *v = n;
        *is_time = false;
        return KF_OK;
    }
    *is_time = true;
    return kf_check_parse_time(s, v);
}

static int resolve_time(rd_kafka_t *rk, const char *topic, int32_t part, int64_t ms, int64_t high,
                        int64_t *out, kf_error *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate partition list");
    rd_kafka_topic_partition_list_add(l, topic, part)->offset = ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(rk, l, 10000);
    int64_t off = l->elems[0].offset;
    if (!e)
        e = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        return kf_error_set(err, KF_ERR_KAFKA, true,
                            "could not look up the offset of time %" PRId64 " in \"%s\" [%d]: %s",
                            ms, topic, part, rd_kafka_err2str(e));
    *out = off < 0 ? high : off; /* no record at or after the time: the end */
    return KF_OK;
}

typedef struct part_range {
    int32_t id;
    int64_t start, end;
    bool done;
} part_range;

static int check_topic(report *rep, kf_rules *rules, const kf_check_options *o, kf_error *err)
{
    int rc = KF_OK;
    /* a kfleet consumer: librdkafka's log lines and client errors go through kf_log */
    static const char *const defaults[] = {
        "group.id",        "kfleet-validate-check", "enable.auto.commit",   "false",
        "isolation.level", "read_committed",        "enable.partition.eof", "true"};
    size_t nd = sizeof(defaults) / sizeof(defaults[0]) / 2, n = nd + o->kafka_npairs;
    const char **kv = calloc(2 * n, sizeof(*kv));
    if (!kv)
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate consumer settings");
    memcpy(kv, defaults, sizeof(defaults));
    if (o->kafka_npairs)
        memcpy(kv + 2 * nd, o->kafka_kv, 2 * o->kafka_npairs * sizeof(*kv));
    kf_consumer *c = kf_consumer_new(kv, n, NULL, err);
    free(kv);
    if (!c)
        return err->code;
    rd_kafka_t *rk = kf_consumer_handle(c);
    kf_serde *serde = kf_serde_new(o->registry, err);
    kf_event_reader *reader = serde ? kf_event_reader_new(serde, err) : NULL;
    part_range *parts = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    const struct rd_kafka_metadata *md = NULL;
    if (!reader) {
        rc = err->code;
        goto out_destroy;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        rc = kf_error_set(err, e == RD_KAFKA_RESP_ERR__TRANSPORT ? KF_ERR_KAFKA : KF_ERR_NOT_FOUND,
                          false, "could not read the metadata of topic \"%s\": %s", o->topic,
                          rd_kafka_err2str(e               ? e
                                           : md->topic_cnt ? md->topics[0].err
                                                           : e));
        goto out_destroy;
    }
    int np = md->topics[0].partition_cnt;
    parts = calloc(np ? (size_t)np : 1, sizeof(*parts));
    assign = rd_kafka_topic_partition_list_new(np ? np : 1);
    if (!parts || !assign) {
        rc = kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate partitions");
        goto out_destroy;
    }
    int64_t from = 0, to = 0;
    bool from_time = false, to_time = false;
    if ((o->from && parse_bound(o->from, &from, &from_time) != KF_OK) ||
        (o->to && parse_bound(o->to, &to, &to_time) != KF_OK)) {
        rc = kf_error_set(err, KF_ERR_CONFIG, false,
                          "--from and --to take an offset or an ISO-8601 time, not \"%s\"",
                          o->from && parse_bound(o->from, &from, &from_time) != KF_OK ? o->from
                                                                                      : o->to);
        goto out_destroy;
    }
    size_t open = 0;
    for (int i = 0; i < np; i++) {
        part_range *p = &parts[i];
        p->id = md->topics[0].partitions[i].id;
        int64_t low, high;
        e = rd_kafka_query_watermark_offsets(rk, o->topic, p->id, &low, &high, 10000);
        if (e) {
            rc = kf_error_set(err, KF_ERR_KAFKA, true,
                              "could not read the offsets of \"%s\" [%d]: %s", o->topic, p->id,
                              rd_kafka_err2str(e));
            goto out_destroy;
        }
        p->start = low;
        p->end = high;
        if (o->from) {
            int64_t s = from;
            if (from_time && (rc = resolve_time(rk, o->topic, p->id, from, high, &s, err)))
                goto out_destroy;
            p->start = s > low ? s : low;
        }
        if (o->to) {
            int64_t t = to;
            if (to_time && (rc = resolve_time(rk, o->topic, p->id, to, high, &t, err)))
                goto out_destroy;
            p->end = t < high ? t : high;
        }
        p->done = p->start >= p->end;
        if (!p->done) {
            rd_kafka_topic_partition_list_add(assign, o->topic, p->id)->offset = p->start;
            open++;
        }
    }
    if (open && (e = rd_kafka_assign(rk, assign))) {
        rc = kf_error_set(err, KF_ERR_KAFKA, false, "could not assign \"%s\": %s", o->topic,
                          rd_kafka_err2str(e));
        goto out_destroy;
    }
    int64_t deadline = kf_retry_now_ms() + (o->timeout_ms > 0 ? o->timeout_ms : 60000);
    while (open) {
        if (kf_retry_now_ms() > deadline) {
            rc = kf_error_set(err, KF_ERR_TIMEOUT, true,
                              "could not read \"%s\" up to the end of the range in time", o->topic);
            goto out_destroy;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        part_range *p = NULL;
        for (int i = 0; i < np; i++)
            if (parts[i].id == m->partition)
                p = &parts[i];
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rc = kf_error_set(err, KF_ERR_KAFKA, false, "could not read \"%s\": %s", o->topic,
                              rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out_destroy;
        }
        if (!p || p->done) {
            rd_kafka_message_destroy(m);
            continue;
        }
        bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (!eof && m->offset < p->end) {
            snprintf(rep->location, LOCATION_SIZE, "%d:%" PRId64, m->partition, m->offset);
            rep->records++;
            kf_event ev;
            kf_error derr;
            int drc =
                m->payload ? kf_event_reader_decode(reader, m->payload, m->len, &ev, &derr) : KF_OK;
            if (!m->payload) {
                rep->skipped++;
            } else if (drc != KF_OK) {
                if (derr.retriable) {
                    *err = derr;
                    rc = drc;
                    rd_kafka_message_destroy(m);
                    goto out_destroy;
                }
                rep->undecodable++;
                if (rep->nundecodable_ex < MAX_EXAMPLES) {
                    example *x = &rep->undecodable_ex[rep->nundecodable_ex++];
                    snprintf(x->location, LOCATION_SIZE, "%s", rep->location);
                    snprintf(x->message, sizeof(x->message), "%s", derr.message);
                }
            } else {
                rd_kafka_timestamp_type_t tt;
                int64_t ts = rd_kafka_message_timestamp(m, &tt);
                kf_verdict vd;
                if (ev.op == KF_OP_DELETE || ev.op == KF_OP_TRUNCATE)
                    rep->skipped++;
                if ((rc = kf_rules_check_event(rules, &ev, m->key, m->key_len, ts, &vd))) {
                    kf_error_set(err, rc, false, "could not check record %s", rep->location);
                    rd_kafka_message_destroy(m);
                    goto out_destroy;
                }
            }
        }
        if (eof || m->offset + 1 >= p->end) {
            p->done = true;
            open--;
        }
        rd_kafka_message_destroy(m);
    }

out_destroy:
    if (md)
        rd_kafka_metadata_destroy(md);
    if (assign)
        rd_kafka_topic_partition_list_destroy(assign);
    free(parts);
    kf_event_reader_destroy(reader);
    kf_serde_destroy(serde);
    kf_consumer_destroy(c);
    return rc;
}

/* ---- reports ---- */

static bool failed(const report *r)
{
    if (r->undecodable || r->nbreaches)
        return true;
    for (size_t i = 0; i < r->c->nrules; i++)
        if (r->c->rules[i].severity == KF_SEVERITY_QUARANTINE && r->rules[i].violations)
            return true;
    return false;
}

static const char *severity_name(kf_severity s)
{
    return s == KF_SEVERITY_WARN ? "warn" : "quarantine";
}

static int write_json(const report *r, const kf_check_options *o, FILE *out)
{
    json_t *root = json_object();
    json_t *src = json_object();
    json_t *rules = json_array();
    json_t *breaches = json_array();
    json_t *undec = json_array();
    if (!root || !src || !rules || !breaches || !undec)
        goto out_nomem;
    if (o->file) {
        json_object_set_new(src, "file", json_string(o->file));
    } else {
        json_object_set_new(src, "topic", json_string(o->topic));
        json_object_set_new(src, "from", o->from ? json_string(o->from) : json_null());
        json_object_set_new(src, "to", o->to ? json_string(o->to) : json_null());
    }
    json_object_set_new(root, "contract", json_string(r->c->name));
    json_object_set_new(root, "source", src);
    src = NULL;
    json_object_set_new(root, "records", json_integer((json_int_t)r->records));
    json_object_set_new(root, "skipped", json_integer((json_int_t)r->skipped));
    json_object_set_new(root, "undecodable", json_integer((json_int_t)r->undecodable));
    for (size_t i = 0; i < r->nundecodable_ex; i++)
        json_array_append_new(undec,
                              json_pack("{s:s,s:s}", "location", r->undecodable_ex[i].location,
                                        "message", r->undecodable_ex[i].message));
    json_object_set_new(root, "undecodable_examples", undec);
    undec = NULL;
    for (size_t i = 0; i < r->c->nrules; i++) {
        const kf_rule *rule = &r->c->rules[i];
        if (!rule->column)
            continue;
        json_t *ex = json_array();
        for (size_t j = 0; ex && j < r->rules[i].nex; j++)
            json_array_append_new(ex, json_pack("{s:s,s:s}", "location", r->rules[i].ex[j].location,
                                                "message", r->rules[i].ex[j].message));
        json_array_append_new(rules,
                              json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "id", rule->id, "kind",
                                        kf_rule_kind_name(rule->kind), "column", rule->column,
                                        "severity", severity_name(rule->severity), "violations",
                                        (json_int_t)r->rules[i].violations, "examples",
                                        ex ? ex : json_array()));
    }
    json_object_set_new(root, "rules", rules);
    rules = NULL;
    for (size_t i = 0; i < r->nbreaches; i++) {
        const breach_report *b = &r->breaches[i];
        json_array_append_new(
            breaches, json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "id", b->rule->id, "kind",
                                kf_rule_kind_name(b->rule->kind), "threshold",
                                (json_int_t)b->rule->rows, "rows", (json_int_t)b->rows, "start_ms",
                                (json_int_t)b->start, "end_ms", (json_int_t)b->end));
    }
    json_object_set_new(root, "dataset_breaches", breaches);
    breaches = NULL;
    json_object_set_new(root, "result", json_string(failed(r) ? "fail" : "pass"));
    int rc =
        json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 && fputc('\n', out) != EOF
            ? KF_OK
            : KF_ERR_IO;
    json_decref(root);
    return rc;

out_nomem:
    json_decref(root);
    json_decref(src);
    json_decref(rules);
    json_decref(breaches);
    json_decref(undec);
    return KF_ERR_NOMEM;
}

static int write_table(const report *r, const kf_check_options *o, FILE *out)
{
    fprintf(out, "contract %s (%s) on %s%s\n", r->c->name, r->c->path, o->file ? "file " : "topic ",
            o->file ? o->file : o->topic);
    fprintf(out,
            "records checked: %" PRIu64 ", skipped (deletes, tombstones, other lines): %" PRIu64
            ", undecodable: %" PRIu64 "\n\n",
            r->records, r->skipped, r->undecodable);
    size_t w = 4;
    for (size_t i = 0; i < r->c->nrules; i++)
        if (strlen(r->c->rules[i].id) > w)
            w = strlen(r->c->rules[i].id);
    fprintf(out, "%-*s  %-10s  %10s  %s\n", (int)w, "RULE", "SEVERITY", "VIOLATIONS",
            "FIRST EXAMPLE");
    for (size_t i = 0; i < r->c->nrules; i++) {
        const kf_rule *rule = &r->c->rules[i];
        if (!rule->column)
            continue;
        const rule_report *rr = &r->rules[i];
        fprintf(out, "%-*s  %-10s  %10" PRIu64 "  %s%s%s\n", (int)w, rule->id,
                severity_name(rule->severity), rr->violations, rr->nex ? rr->ex[0].location : "",
                rr->nex ? ": " : "", rr->nex ? rr->ex[0].message : "");
    }
    for (size_t i = 0; i < r->nundecodable_ex; i++)
        fprintf(out, "undecodable %s: %s\n", r->undecodable_ex[i].location,
                r->undecodable_ex[i].message);
    for (size_t i = 0; i < r->nbreaches; i++) {
        const breach_report *b = &r->breaches[i];
        fprintf(out, "dataset rule %s breached: %" PRId64 " rows (%s %" PRId64 ")\n", b->rule->id,
                b->rows, kf_rule_kind_name(b->rule->kind), b->rule->rows);
    }
    fprintf(out, "\nresult: %s\n", failed(r) ? "FAIL" : "PASS");
    return ferror(out) ? KF_ERR_IO : KF_OK;
}

int kf_check_run(const kf_check_options *o, FILE *out, kf_error *err)
{
    if (!o->contract || (!o->file == !o->topic))
        return kf_error_set(err, KF_ERR_CONFIG, false,
                            "check needs --contract and either --topic or --file");
    if (o->file && (o->from || o->to))
        return kf_error_set(err, KF_ERR_CONFIG, false, "--from and --to apply to --topic only");
    report rep = {.c = o->contract};
    rep.rules = calloc(o->contract->nrules ? o->contract->nrules : 1, sizeof(*rep.rules));
    kf_rules *rules = rep.rules ? kf_rules_new(o->contract, 1, err) : NULL;
    if (!rules) {
        free(rep.rules);
        return kf_error_set(err, KF_ERR_NOMEM, false, "could not allocate rule state");
    }
    kf_rules_set_violation_fn(rules, on_violation, &rep);
    int rc;
    if (o->file) {
        FILE *f = fopen(o->file, "rb");
        if (!f) {
            rc = kf_error_set(err, KF_ERR_CONFIG, false, "could not open \"%s\": %s", o->file,
                              strerror(errno));
            goto out_free;
        }
        if (has_suffix(o->file, ".csv"))
            rc = check_csv(&rep, rules, f, o->file, err);
        else if (has_suffix(o->file, ".jsonl") || has_suffix(o->file, ".ndjson") ||
                 has_suffix(o->file, ".json"))
            rc = check_jsonl(&rep, rules, f, o->file, err);
        else
            rc = kf_error_set(err, KF_ERR_CONFIG, false,
                              "cannot tell the format of \"%s\": name it .jsonl, .ndjson, "
                              ".json or .csv",
                              o->file);
        fclose(f);
    } else {
        if (!o->registry) {
            rc = kf_error_set(err, KF_ERR_CONFIG, false,
                              "checking a topic needs registry.url to decode its records");
            goto out_free;
        }
        rc = check_topic(&rep, rules, o, err);
    }
    if (rc != KF_OK)
        goto out_free;
    kf_rules_end_batch(rules);
    kf_rules_close_windows(rules);
    kf_rules_commit(rules, on_breach, &rep);
    rc = o->json ? write_json(&rep, o, out) : write_table(&rep, o, out);
    if (rc != KF_OK)
        kf_error_set(err, rc, false, "could not write the report");
    else
        rc = failed(&rep) ? 1 : 0;

out_free:
    kf_rules_destroy(rules);
    free(rep.rules);
    return rc;
}
