/* Integration test of the local stack itself: each server that tools/stack starts is real and
 * configured the way the producers and workers need (topics, Confluent API, logical WAL, binlog).
 */
#include "kf_test_env.h"

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <mysql.h>

#define KAFKA_MESSAGES   1000
#define KAFKA_PARTITIONS 3
#define KAFKA_TIMEOUT_MS 60000

/* ---- Kafka ---------------------------------------------------------------------------------- */

static rd_kafka_t *kafka_client(const char *bootstrap, rd_kafka_type_t type, const char *group,
                                rd_kafka_conf_t *conf)
{
    char errstr[512];
    if (conf == NULL) {
        conf = rd_kafka_conf_new();
        assert_non_null(conf);
    }
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    if (group != NULL) {
        assert_int_equal(rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        assert_int_equal(
            rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)),
            RD_KAFKA_CONF_OK);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fail_msg("could not create Kafka client: %s", errstr);
    }
    return rk;
}

/* Waits for the result event of one admin request and checks the topic result. */
static void kafka_admin_expect_ok(rd_kafka_queue_t *queue, const char *what, const char *topic)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, KAFKA_TIMEOUT_MS);
    if (ev == NULL) {
        fail_msg("could not %s topic \"%s\": no answer within %d ms", what, topic,
                 KAFKA_TIMEOUT_MS);
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        fail_msg("could not %s topic \"%s\": %s", what, topic, msg);
    }
    const rd_kafka_topic_result_t **results = NULL;
    size_t n = 0;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
        results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    } else {
        results = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    }
    assert_int_equal(n, 1);
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[0]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", rd_kafka_topic_result_error_string(results[0]));
        rd_kafka_event_destroy(ev);
        fail_msg("could not %s topic \"%s\": %s", what, topic, msg);
    }
    assert_string_equal(rd_kafka_topic_result_name(results[0]), topic);
    rd_kafka_event_destroy(ev);
}

static void kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    if (nt == NULL) {
        fail_msg("could not describe topic \"%s\": %s", topic, errstr);
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    assert_non_null(queue);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, queue);
    rd_kafka_NewTopic_destroy(nt);
    kafka_admin_expect_ok(queue, "create", topic);
    rd_kafka_queue_destroy(queue);
}

static void kafka_delete_topic(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    assert_non_null(dt);
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    assert_non_null(queue);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, queue);
    rd_kafka_DeleteTopic_destroy(dt);
    kafka_admin_expect_ok(queue, "delete", topic);
    rd_kafka_queue_destroy(queue);
}

typedef struct delivery_tally {
    int delivered;
    int failed;
    char first_error[256];
} delivery_tally;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    delivery_tally *tally = opaque;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        tally->delivered++;
        return;
    }
    if (tally->failed++ == 0) {
        snprintf(tally->first_error, sizeof(tally->first_error), "%s", rd_kafka_err2str(msg->err));
    }
}

static void kafka_produce(const char *bootstrap, const char *topic, int count)
{
    char errstr[512];
    delivery_tally tally = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_non_null(conf);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &tally);
    rd_kafka_t *rk = kafka_client(bootstrap, RD_KAFKA_PRODUCER, NULL, conf);

    for (int i = 0; i < count; i++) {
        char key[32];
        char value[64];
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(value, sizeof(value), "value-%d-of-%d", i, count);
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(value, strlen(value)),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 100);
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_destroy(rk);
            fail_msg("could not produce to \"%s\": %s", topic, rd_kafka_err2str(err));
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, KAFKA_TIMEOUT_MS);
    rd_kafka_destroy(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fail_msg("could not flush to \"%s\": %s", topic, rd_kafka_err2str(err));
    }
    if (tally.failed > 0) {
        fail_msg("%d of %d messages to \"%s\" failed, first: %s", tally.failed, count, topic,
                 tally.first_error);
    }
    assert_int_equal(tally.delivered, count);
}

/* Consumes the topic from the beginning with a fresh group and checks every key/value pair. */
static void kafka_consume_and_check(const char *bootstrap, const char *topic, const char *group,
                                    int count)
{
    rd_kafka_t *rk = kafka_client(bootstrap, RD_KAFKA_CONSUMER, group, NULL);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    assert_non_null(topics);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);

    bool *seen = calloc((size_t)count, sizeof(*seen));
    assert_non_null(seen);
    int received = 0;
    int partitions_used = 0;
    bool partition_seen[KAFKA_PARTITIONS] = {false};
    char failure[512] = "";
    struct timespec start;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (received < count && failure[0] == '\0') {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 > KAFKA_TIMEOUT_MS) {
            snprintf(failure, sizeof(failure), "received %d of %d messages from \"%s\" in %d ms",
                     received, count, topic, KAFKA_TIMEOUT_MS);
            break;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 500);
        if (msg == NULL) {
            continue;
        }
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* The topic was just created; metadata may lag behind for a moment. */
            if (msg->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
                msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                snprintf(failure, sizeof(failure), "could not consume \"%s\": %s", topic,
                         rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        int i = -1;
        char key[32];
        char expected[64];
        size_t klen = msg->key_len < sizeof(key) - 1 ? msg->key_len : sizeof(key) - 1;
        memcpy(key, msg->key, klen);
        key[klen] = '\0';
        if (sscanf(key, "key-%d", &i) != 1 || i < 0 || i >= count || seen[i]) {
            snprintf(failure, sizeof(failure), "unexpected or duplicate key \"%s\"", key);
        } else {
            snprintf(expected, sizeof(expected), "value-%d-of-%d", i, count);
            if (msg->len != strlen(expected) || memcmp(msg->payload, expected, msg->len) != 0) {
                snprintf(failure, sizeof(failure), "key \"%s\" carries \"%.*s\", expected \"%s\"",
                         key, (int)msg->len, (const char *)msg->payload, expected);
            } else {
                seen[i] = true;
                received++;
                if (msg->partition >= 0 && msg->partition < KAFKA_PARTITIONS &&
                    !partition_seen[msg->partition]) {
                    partition_seen[msg->partition] = true;
                    partitions_used++;
                }
            }
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(seen);
    if (failure[0] != '\0') {
        fail_msg("%s", failure);
    }
    assert_int_equal(received, count);
    /* Keys hash over every partition: proof the topic really has the partitions asked for. */
    assert_int_equal(partitions_used, KAFKA_PARTITIONS);
}

static void kafka_topic_round_trip(void **state)
{
    const char *bootstrap = kf_test_env("KFLEET_BOOTSTRAP");
    char topic[128];
    char group[128];
    kf_test_unique_name(topic, sizeof(topic), "kfleet.test.stack");
    kf_test_unique_name(group, sizeof(group), "kfleet-test-stack");
    rd_kafka_t *admin = kafka_client(bootstrap, RD_KAFKA_PRODUCER, NULL, NULL);
    kafka_create_topic(admin, topic, KAFKA_PARTITIONS);
    kafka_produce(bootstrap, topic, KAFKA_MESSAGES);
    kafka_consume_and_check(bootstrap, topic, group, KAFKA_MESSAGES);
    kafka_delete_topic(admin, topic);
    rd_kafka_destroy(admin);
}

/* ---- Schema registry (Confluent REST API) --------------------------------------------------- */

typedef struct http_body {
    char *data;
    size_t len;
} http_body;

static size_t http_collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_body *body = userdata;
    size_t n = size * nmemb;
    char *grown = realloc(body->data, body->len + n + 1);
    if (grown == NULL) {
        return 0;
    }
    memcpy(grown + body->len, ptr, n);
    body->len += n;
    grown[body->len] = '\0';
    body->data = grown;
    return n;
}

/* Sends one request to the registry; returns the parsed JSON answer (owned by the caller) and
 * the HTTP status in *status. Fails the test on transport errors or non-JSON answers. */
static json_t *registry_call(const char *base, const char *method, const char *path,
                             const char *body, long *status)
{
    char url[1024];
    char errbuf[CURL_ERROR_SIZE] = "";
    http_body answer = {0};
    snprintf(url, sizeof(url), "%s%s", base, path);
    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    struct curl_slist *headers =
        curl_slist_append(NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
    assert_non_null(headers);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        free(answer.data);
        fail_msg("could not %s %s: %s", method, url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    json_error_t jerr;
    json_t *json = json_loadb(answer.data != NULL ? answer.data : "", answer.len, 0, &jerr);
    if (json == NULL) {
        char text[256];
        snprintf(text, sizeof(text), "%.200s", answer.data != NULL ? answer.data : "");
        free(answer.data);
        fail_msg("%s %s answered %ld with non-JSON \"%s\": %s", method, url, *status, text,
                 jerr.text);
    }
    free(answer.data);
    return json;
}

/* Asserts that the JSON text in schema_text parses and equals expected. */
static void assert_same_schema(const char *schema_text, const json_t *expected)
{
    json_error_t jerr;
    json_t *got = json_loads(schema_text, 0, &jerr);
    if (got == NULL) {
        fail_msg("registry returned a schema that is not JSON (%s): %s", jerr.text, schema_text);
    }
    bool same = json_equal(got, expected);
    json_decref(got);
    if (!same) {
        fail_msg("registry returned a different schema: %s", schema_text);
    }
}

static void registry_schema_round_trip(void **state)
{
    const char *base = kf_test_env("KFLEET_REGISTRY_URL");
    char ns[128];
    char path[512];
    long status = 0;
    kf_test_unique_name(ns, sizeof(ns), "kfleet.test.stack");
    json_t *schema = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:[s, s], s:n}]}", "type",
                               "record", "name", "Value", "namespace", ns, "fields", "name", "id",
                               "type", "long", "name", "note", "type", "null", "string", "default");
    assert_non_null(schema);
    char *schema_text = json_dumps(schema, JSON_COMPACT);
    assert_non_null(schema_text);
    json_t *request = json_pack("{s:s}", "schema", schema_text);
    assert_non_null(request);
    char *body = json_dumps(request, JSON_COMPACT);
    assert_non_null(body);

    snprintf(path, sizeof(path), "/subjects/%s-value/versions", ns);
    json_t *reg = registry_call(base, "POST", path, body, &status);
    assert_int_equal(status, 200);
    json_int_t id = json_integer_value(json_object_get(reg, "id"));
    assert_true(id > 0);
    json_decref(reg);

    /* Registering the same schema again is idempotent: same id, as the Confluent API promises. */
    reg = registry_call(base, "POST", path, body, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(reg, "id")), id);
    json_decref(reg);

    snprintf(path, sizeof(path), "/subjects/%s-value/versions/latest", ns);
    json_t *latest = registry_call(base, "GET", path, NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(latest, "id")), id);
    assert_int_equal(json_integer_value(json_object_get(latest, "version")), 1);
    const char *latest_text = json_string_value(json_object_get(latest, "schema"));
    assert_non_null(latest_text);
    assert_same_schema(latest_text, schema);
    json_decref(latest);

    snprintf(path, sizeof(path), "/schemas/ids/%" JSON_INTEGER_FORMAT, id);
    json_t *by_id = registry_call(base, "GET", path, NULL, &status);
    assert_int_equal(status, 200);
    const char *by_id_text = json_string_value(json_object_get(by_id, "schema"));
    assert_non_null(by_id_text);
    assert_same_schema(by_id_text, schema);
    json_decref(by_id);

    /* An unknown id is a 404 with the Confluent error code 40403, which the decoder relies on. */
    json_t *missing = registry_call(base, "GET", "/schemas/ids/2147483000", NULL, &status);
    assert_int_equal(status, 404);
    assert_int_equal(json_integer_value(json_object_get(missing, "error_code")), 40403);
    json_decref(missing);

    snprintf(path, sizeof(path), "/subjects/%s-value", ns);
    json_t *deleted = registry_call(base, "DELETE", path, NULL, &status);
    assert_int_equal(status, 200);
    json_decref(deleted);

    free(body);
    json_decref(request);
    free(schema_text);
    json_decref(schema);
}

/* ---- PostgreSQL ----------------------------------------------------------------------------- */

/* Runs sql and checks the result status; returns the result (PQclear by the caller). */
static PGresult *pg_exec(PGconn *conn, const char *sql, ExecStatusType expected)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != expected) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        PQclear(res);
        fail_msg("could not run \"%s\": %s", sql, msg);
    }
    return res;
}

static void postgres_table_round_trip(void **state)
{
    const char *dsn = kf_test_env("KFLEET_PG_DSN");
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("could not connect to PostgreSQL: %s", msg);
    }
    PGresult *res = pg_exec(conn, "SHOW wal_level", PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "logical");
    PQclear(res);

    char table[128];
    char sql[512];
    kf_test_unique_name(table, sizeof(table), "kfleet_test_stack");
    snprintf(sql, sizeof(sql),
             "CREATE TABLE %s (id bigint PRIMARY KEY, name text NOT NULL, qty int)", table);
    PQclear(pg_exec(conn, sql, PGRES_COMMAND_OK));

    snprintf(sql, sizeof(sql), "INSERT INTO %s (id, name, qty) VALUES ($1, $2, $3)", table);
    for (int i = 1; i <= 3; i++) {
        char id[16];
        char name[32];
        char qty[16];
        snprintf(id, sizeof(id), "%d", i);
        snprintf(name, sizeof(name), "row %d é", i);
        snprintf(qty, sizeof(qty), "%d", i * 10);
        const char *params[3] = {id, name, qty};
        res = PQexecParams(conn, sql, 3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
            PQclear(res);
            fail_msg("could not insert into \"%s\": %s", table, msg);
        }
        PQclear(res);
    }

    snprintf(sql, sizeof(sql), "SELECT id, name, qty FROM %s ORDER BY id", table);
    res = pg_exec(conn, sql, PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 3);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "row %d é", i + 1);
        assert_int_equal(atoi(PQgetvalue(res, i, 0)), i + 1);
        assert_string_equal(PQgetvalue(res, i, 1), name);
        assert_int_equal(atoi(PQgetvalue(res, i, 2)), (i + 1) * 10);
    }
    PQclear(res);

    /* The client role may decode the WAL: a pgoutput slot can be created and dropped. */
    char slot[64];
    kf_test_unique_name(slot, sizeof(slot), "kfleet_test");
    snprintf(sql, sizeof(sql), "SELECT pg_create_logical_replication_slot('%s', 'pgoutput')", slot);
    PQclear(pg_exec(conn, sql, PGRES_TUPLES_OK));
    snprintf(sql, sizeof(sql), "SELECT pg_drop_replication_slot('%s')", slot);
    PQclear(pg_exec(conn, sql, PGRES_TUPLES_OK));

    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    PQclear(pg_exec(conn, sql, PGRES_COMMAND_OK));
    PQfinish(conn);
}

/* ---- MariaDB -------------------------------------------------------------------------------- */

/* Runs a query that returns exactly one row and copies column col of it into out. */
static void mysql_one_value(MYSQL *db, const char *sql, unsigned col, char *out, size_t cap)
{
    if (mysql_query(db, sql) != 0) {
        fail_msg("could not run \"%s\": %s", sql, mysql_error(db));
    }
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL) {
        fail_msg("\"%s\" returned no result: %s", sql, mysql_error(db));
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row == NULL || mysql_num_fields(res) <= col || row[col] == NULL) {
        mysql_free_result(res);
        fail_msg("\"%s\" returned no row with column %u", sql, col);
    }
    snprintf(out, cap, "%s", row[col]);
    mysql_free_result(res);
}

static void mariadb_binlog_is_row_based(void **state)
{
    kf_test_dsn dsn;
    kf_test_env_dsn("KFLEET_MYSQL_DSN", "mysql", 3306, &dsn);
    MYSQL *db = mysql_init(NULL);
    assert_non_null(db);
    if (mysql_real_connect(db, dsn.host, dsn.user, dsn.password, dsn.db, dsn.port, NULL, 0) ==
        NULL) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", mysql_error(db));
        mysql_close(db);
        fail_msg("could not connect to MariaDB at %s:%u: %s", dsn.host, dsn.port, msg);
    }

    char value[256];
    mysql_one_value(db, "SHOW VARIABLES LIKE 'log_bin'", 1, value, sizeof(value));
    assert_string_equal(value, "ON");
    mysql_one_value(db, "SHOW VARIABLES LIKE 'binlog_format'", 1, value, sizeof(value));
    assert_string_equal(value, "ROW");
    mysql_one_value(db, "SHOW VARIABLES LIKE 'binlog_row_image'", 1, value, sizeof(value));
    assert_string_equal(value, "FULL");
    mysql_one_value(db, "SHOW VARIABLES LIKE 'binlog_row_metadata'", 1, value, sizeof(value));
    assert_string_equal(value, "FULL");

    char file[256];
    char pos[32];
    mysql_one_value(db, "SHOW MASTER STATUS", 0, file, sizeof(file));
    mysql_one_value(db, "SHOW MASTER STATUS", 1, pos, sizeof(pos));
    assert_true(strlen(file) > 0);
    unsigned long long before = strtoull(pos, NULL, 10);
    assert_true(before > 0);

    /* A row change moves the binlog position: the binlog really records writes. */
    char table[128];
    char sql[512];
    kf_test_unique_name(table, sizeof(table), "kfleet_test_stack");
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (id BIGINT PRIMARY KEY, name VARCHAR(64))", table);
    if (mysql_query(db, sql) != 0) {
        fail_msg("could not run \"%s\": %s", sql, mysql_error(db));
    }
    snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (1, 'one'), (2, 'two')", table);
    if (mysql_query(db, sql) != 0) {
        fail_msg("could not run \"%s\": %s", sql, mysql_error(db));
    }
    assert_int_equal(mysql_affected_rows(db), 2);
    char file_after[256];
    mysql_one_value(db, "SHOW MASTER STATUS", 0, file_after, sizeof(file_after));
    mysql_one_value(db, "SHOW MASTER STATUS", 1, pos, sizeof(pos));
    assert_true(strcmp(file_after, file) != 0 || strtoull(pos, NULL, 10) > before);
    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    if (mysql_query(db, sql) != 0) {
        fail_msg("could not run \"%s\": %s", sql, mysql_error(db));
    }
    mysql_close(db);
}

static int global_setup(void **state)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int global_teardown(void **state)
{
    curl_global_cleanup();
    mysql_library_end();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kafka_topic_round_trip),
        cmocka_unit_test(registry_schema_round_trip),
        cmocka_unit_test(postgres_table_round_trip),
        cmocka_unit_test(mariadb_binlog_is_row_based),
    };
    return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
