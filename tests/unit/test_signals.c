/* Unit tests for the signals module: signals raised in-process, and a forked child for the
 * second-signal exit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kfleet/signals.h"

static int teardown(void **state)
{
    kf_signals_uninstall();
    return 0;
}

static bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void first_sigterm_requests_stop_and_wakes_poll(void **state)
{
    kf_error err;
    assert_int_equal(kf_signals_install(&err), KF_OK);
    int fd = kf_signals_fd();
    assert_true(fd >= 0);
    assert_false(kf_signals_stop_requested());
    assert_false(fd_readable(fd, 0));
    assert_int_equal(raise(SIGTERM), 0);
    assert_true(kf_signals_stop_requested());
    assert_int_equal(kf_signals_last(), SIGTERM);
    assert_true(fd_readable(fd, 1000));
    /* it stays readable for every later poll */
    assert_true(fd_readable(fd, 0));
}

static void sigint_requests_stop(void **state)
{
    kf_error err;
    assert_int_equal(kf_signals_install(&err), KF_OK);
    assert_int_equal(kf_signals_install(&err), KF_OK); /* idempotent */
    assert_int_equal(raise(SIGINT), 0);
    assert_true(kf_signals_stop_requested());
    assert_int_equal(kf_signals_last(), SIGINT);
}

static void sigpipe_is_ignored(void **state)
{
    kf_error err;
    assert_int_equal(kf_signals_install(&err), KF_OK);
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    /* without the handler this write would kill the test with SIGPIPE */
    assert_int_equal(write(p[1], "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    close(p[1]);
    assert_false(kf_signals_stop_requested());
}

static void request_stop_without_a_signal(void **state)
{
    kf_error err;
    assert_int_equal(kf_signals_install(&err), KF_OK);
    kf_signals_request_stop();
    assert_true(kf_signals_stop_requested());
    assert_int_equal(kf_signals_last(), 0);
    assert_true(fd_readable(kf_signals_fd(), 1000));
    /* a programmatic stop is not a signal: the first real one still takes the graceful path */
    assert_int_equal(raise(SIGTERM), 0);
    assert_int_equal(kf_signals_last(), SIGTERM);
}

static void uninstall_restores_dispositions(void **state)
{
    struct sigaction before, before_pipe, after;
    sigaction(SIGTERM, NULL, &before);
    sigaction(SIGPIPE, NULL, &before_pipe);
    kf_error err;
    assert_int_equal(kf_signals_install(&err), KF_OK);
    assert_int_equal(raise(SIGTERM), 0);
    kf_signals_uninstall();
    sigaction(SIGTERM, NULL, &after);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    sigaction(SIGPIPE, NULL, &after);
    assert_ptr_equal(after.sa_handler, before_pipe.sa_handler);
    assert_false(kf_signals_stop_requested());
    assert_int_equal(kf_signals_fd(), -1);
    kf_signals_uninstall(); /* twice is a no-op */
}

/* Runs a child that installs the handlers and raises signo twice; returns its wait status. */
static int second_signal_status(int signo)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kf_error err;
        if (kf_signals_install(&err) != KF_OK)
            _exit(90);
        raise(signo);
        if (!kf_signals_stop_requested())
            _exit(91);
        raise(signo); /* must not return */
        _exit(92);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void second_signal_exits_at_once(void **state)
{
    int status = second_signal_status(SIGINT);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    status = second_signal_status(SIGTERM);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 143);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(first_sigterm_requests_stop_and_wakes_poll, teardown),
        cmocka_unit_test_teardown(sigint_requests_stop, teardown),
        cmocka_unit_test_teardown(sigpipe_is_ignored, teardown),
        cmocka_unit_test_teardown(request_stop_without_a_signal, teardown),
        cmocka_unit_test_teardown(uninstall_restores_dispositions, teardown),
        cmocka_unit_test_teardown(second_signal_exits_at_once, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
