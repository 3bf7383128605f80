/* Helpers of the simulator's integration tests: running the kfleet-sim binary with arguments,
 * unique names, and reading the expected-state file. */
#ifndef KF_SIM_ITEST_H
#define KF_SIM_ITEST_H

#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>

#include "kf_test_env.h"

/* The kfleet-sim binary (set by CTest). */
static inline const char *sim_bin(void)
{
    return kf_test_env("KFLEET_SIM_BIN");
}

/* The spec file every test uses. */
static inline const char *sim_spec_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/schemas/sim/shop.yaml", kf_test_env("KFLEET_SOURCE_DIR"));
    return buf;
}

/* Starts kfleet-sim with argv (NULL-terminated, argv[0] ignored) and stderr to errfile (or
 * inherited when NULL); stdout goes to outfile (or /dev/null). Returns the pid. */
static inline pid_t sim_start(char *const argv[], const char *outfile, const char *errfile)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(outfile ? outfile : "/dev/null", "w", stdout))
            _exit(126);
        if (errfile && !freopen(errfile, "w", stderr))
            _exit(126);
        execv(sim_bin(), argv);
        _exit(127);
    }
    return pid;
}

/* Waits for pid; returns its exit status, or 128 + signal. */
static inline int sim_wait(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline int sim_run(char *const argv[], const char *outfile)
{
    return sim_wait(sim_start(argv, outfile, NULL));
}

/* A name unique to this test run: "<base>_<pid>_<time>". */
static inline void sim_unique(char *buf, size_t len, const char *base)
{
    snprintf(buf, len, "%s_%ld_%ld", base, (long)getpid(), (long)time(NULL));
}

/* Loads a JSON file; fails the test if it cannot. */
static inline json_t *sim_load_json(const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        fail_msg("could not read %s: %s (line %d)", path, jerr.text, jerr.line);
    return root;
}

#endif
