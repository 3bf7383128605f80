/* Unit tests for the log module: exact logfmt and JSON lines (escaping, context fields,
 * truncation) captured from stderr, and level filtering. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kfleet/log.h"

/* stderr is pointed at a temporary file while a test logs, then read back. */
typedef struct capture {
    FILE *file;
    int saved_fd;
} capture;

static void capture_start(capture *c)
{
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_fd = dup(STDERR_FILENO);
    assert_true(c->saved_fd >= 0);
    assert_int_equal(dup2(fileno(c->file), STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns what was written (caller frees). */
static char *capture_end(capture *c)
{
    assert_int_equal(dup2(c->saved_fd, STDERR_FILENO), STDERR_FILENO);
    close(c->saved_fd);
    long len = ftell(c->file);
    fseek(c->file, 0, SEEK_END);
    len = ftell(c->file);
    rewind(c->file);
    char *buf = calloc(1, (size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, c->file), (size_t)len);
    fclose(c->file);
    return buf;
}

static int reset(void **state)
{
    kf_log_context_clear();
    kf_log_init("kfleet-test", KF_LOG_INFO, KF_LOG_LOGFMT);
    return 0;
}

/* Checks the timestamp field and returns the rest of the line after it. */
static const char *after_ts(const char *line, bool json)
{
    regex_t re;
    const char *pattern = json ? "^\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                                 "[0-9]{2}\\.[0-9]{3}Z\""
                               : "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\."
                                 "[0-9]{3}Z";
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
    regmatch_t m;
    int rc = regexec(&re, line, 1, &m, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("no timestamp at the start of: %s", line);
    return line + m.rm_eo;
}

static void logfmt_line_is_exact(void **state)
{
    capture c;
    capture_start(&c);
    kf_log(KF_LOG_INFO, "partition assigned", "topic", "orders", "partition", "3", "note",
           "has space", "q", "say \"hi\"\\\n", "empty", "", "nullv", (char *)NULL, "eq", "a=b",
           "bad key", "x", (char *)NULL);
    char *out = capture_end(&c);
    assert_string_equal(after_ts(out, false),
                        " level=info program=kfleet-test msg=\"partition assigned\" topic=orders "
                        "partition=3 note=\"has space\" q=\"say \\\"hi\\\"\\\\\\n\" empty=\"\" "
                        "nullv=\"\" eq=\"a=b\" bad_key=x\n");
    free(out);
}

static void json_line_is_exact(void **state)
{
    kf_log_init("kfleet-test", KF_LOG_DEBUG, KF_LOG_JSON);
    capture c;
    capture_start(&c);
    kf_log(KF_LOG_WARN, "tab\there", "k\"ey", "ctl\x01 \xc3\xa9 \xff end", "path", "C:\\x", "del",
           "\x7f", (char *)NULL);
    char *out = capture_end(&c);
    assert_string_equal(after_ts(out, true),
                        ",\"level\":\"warn\",\"program\":\"kfleet-test\",\"msg\":\"tab\\there\","
                        "\"k\\\"ey\":\"ctl\\u0001 \xc3\xa9 \\ufffd end\",\"path\":\"C:\\\\x\","
                        "\"del\":\"\\u007f\"}\n");
    free(out);
}

static void invalid_utf8_is_replaced_in_logfmt(void **state)
{
    capture c;
    capture_start(&c);
    kf_log(KF_LOG_ERROR, "bytes", "v", "a\xc0z", "overlong", "\xe0\x80\x80", (char *)NULL);
    char *out = capture_end(&c);
    assert_string_equal(after_ts(out, false),
                        " level=error program=kfleet-test msg=bytes v=a\xef\xbf\xbdz "
                        "overlong=\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\n");
    free(out);
}

static void levels_below_minimum_are_dropped(void **state)
{
    kf_log_init("kfleet-test", KF_LOG_WARN, KF_LOG_LOGFMT);
    assert_false(kf_log_enabled(KF_LOG_INFO));
    assert_true(kf_log_enabled(KF_LOG_WARN));
    capture c;
    capture_start(&c);
    kf_log(KF_LOG_DEBUG, "dropped debug", (char *)NULL);
    kf_log(KF_LOG_INFO, "dropped info", (char *)NULL);
    kf_logf(KF_LOG_INFO, "dropped %s", "formatted");
    kf_log(KF_LOG_WARN, "kept warn", (char *)NULL);
    kf_logf(KF_LOG_ERROR, "kept %d errors", 3);
    char *out = capture_end(&c);
    assert_null(strstr(out, "dropped"));
    char *second = strchr(out, '\n');
    assert_non_null(second);
    *second++ = '\0';
    assert_string_equal(after_ts(out, false), " level=warn program=kfleet-test msg=\"kept warn\"");
    assert_string_equal(after_ts(second, false),
                        " level=error program=kfleet-test msg=\"kept 3 errors\"\n");
    free(out);
}

static void context_fields_follow_program(void **state)
{
    assert_int_equal(kf_log_context_set("worker", "sink-pg-1"), KF_OK);
    assert_int_equal(kf_log_context_set("group", "g 1"), KF_OK);
    assert_int_equal(kf_log_context_set("worker", "sink-pg-2"), KF_OK); /* replaces */
    assert_int_equal(kf_log_context_set("", "x"), KF_ERR_INVALID);
    capture c;
    capture_start(&c);
    kf_log(KF_LOG_INFO, "started", "k", "v", (char *)NULL);
    assert_int_equal(kf_log_context_set("group", NULL), KF_OK); /* removes */
    kf_log(KF_LOG_INFO, "again", (char *)NULL);
    char *out = capture_end(&c);
    char *second = strchr(out, '\n') + 1;
    second[-1] = '\0';
    assert_string_equal(after_ts(out, false), " level=info program=kfleet-test worker=sink-pg-2 "
                                              "group=\"g 1\" msg=started k=v");
    assert_string_equal(after_ts(second, false),
                        " level=info program=kfleet-test worker=sink-pg-2 msg=again\n");
    free(out);
}

static void long_lines_are_cut_but_well_formed(void **state)
{
    char *big = malloc(20000);
    assert_non_null(big);
    memset(big, 'a', 19999);
    big[19999] = '\0';
    for (int json = 0; json < 2; json++) {
        kf_log_init("kfleet-test", KF_LOG_INFO, json ? KF_LOG_JSON : KF_LOG_LOGFMT);
        capture c;
        capture_start(&c);
        kf_log(KF_LOG_INFO, "big", "v", big, "after", "dropped", (char *)NULL);
        char *out = capture_end(&c);
        size_t len = strlen(out);
        assert_true(len <= 8192);
        assert_null(strstr(out, "dropped"));
        const char *tail = json ? "aaa\",\"truncated\":\"true\"}\n" : "aaa truncated=true\n";
        assert_string_equal(out + len - strlen(tail), tail);
        free(out);
    }
    /* a multi-byte character is never split */
    for (int i = 0; i + 1 < 19999; i += 2) {
        big[i] = '\xc3';
        big[i + 1] = '\xa9';
    }
    big[19998] = '\0';
    kf_log_init("kfleet-test", KF_LOG_INFO, KF_LOG_LOGFMT);
    capture c;
    capture_start(&c);
    kf_log(KF_LOG_INFO, "big", "v", big, (char *)NULL);
    char *out = capture_end(&c);
    const char *tail = "\xc3\xa9 truncated=true\n";
    assert_string_equal(out + strlen(out) - strlen(tail), tail);
    free(out);
    free(big);
}

static void *log_many(void *arg)
{
    char value[3000];
    memset(value, 'a' + (int)(intptr_t)arg, sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    for (int i = 0; i < 200; i++)
        kf_log(KF_LOG_INFO, "concurrent", "v", value, (char *)NULL);
    return NULL;
}

static void threads_never_interleave_lines(void **state)
{
    capture c;
    capture_start(&c);
    pthread_t t[4];
    for (intptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, log_many, (void *)i), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *out = capture_end(&c);
    int lines = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        const char *rest = after_ts(line, false);
        assert_int_equal(strlen(rest),
                         strlen(" level=info program=kfleet-test msg=concurrent v=") + 2999);
        char ch = rest[strlen(rest) - 1];
        for (const char *p = strstr(rest, " v=") + 3; *p; p++)
            assert_int_equal(*p, ch);
        lines++;
    }
    assert_int_equal(lines, 800);
    free(out);
}

static void parsers_and_names(void **state)
{
    kf_log_level level;
    kf_log_format format;
    assert_int_equal(kf_log_level_parse("debug", &level), KF_OK);
    assert_int_equal(level, KF_LOG_DEBUG);
    assert_int_equal(kf_log_level_parse("warning", &level), KF_OK);
    assert_int_equal(level, KF_LOG_WARN);
    assert_int_equal(kf_log_level_parse("loud", &level), KF_ERR_INVALID);
    assert_int_equal(kf_log_level_parse(NULL, &level), KF_ERR_INVALID);
    assert_int_equal(kf_log_format_parse("json", &format), KF_OK);
    assert_int_equal(format, KF_LOG_JSON);
    assert_int_equal(kf_log_format_parse("xml", &format), KF_ERR_INVALID);
    assert_string_equal(kf_log_level_names[KF_LOG_ERROR], "error");
    assert_null(kf_log_level_names[4]);
    assert_string_equal(kf_log_format_names[KF_LOG_JSON], "json");
    assert_null(kf_log_format_names[2]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(logfmt_line_is_exact, reset),
        cmocka_unit_test_setup(json_line_is_exact, reset),
        cmocka_unit_test_setup(invalid_utf8_is_replaced_in_logfmt, reset),
        cmocka_unit_test_setup(levels_below_minimum_are_dropped, reset),
        cmocka_unit_test_setup(context_fields_follow_program, reset),
        cmocka_unit_test_setup(long_lines_are_cut_but_well_formed, reset),
        cmocka_unit_test_setup(threads_never_interleave_lines, reset),
        cmocka_unit_test_setup(parsers_and_names, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kf_log_context_clear();
    return rc;
}
