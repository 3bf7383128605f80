/* Signal handling for graceful shutdown: handlers only set flags and write one byte to a
 * self-pipe, so a poll loop wakes; a second stop signal exits at once with _exit(2). */
#include "kfleet/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t last_signal;
static volatile sig_atomic_t wake_fd = -1;
static atomic_flag got_signal = ATOMIC_FLAG_INIT; /* lock-free, so async-signal-safe */
static int pipe_fds[2] = {-1, -1};
static bool installed;
static struct sigaction old_int, old_term, old_pipe;

static void wake(void)
{
    int fd = wake_fd;
    if (fd >= 0) {
        /* non-blocking: if the pipe is full it is readable already */
        ssize_t w = write(fd, "x", 1);
        (void)w;
    }
}

static void on_stop_signal(int signo)
{
    if (atomic_flag_test_and_set(&got_signal))
        _exit(128 + signo);
    int saved = errno;
    last_signal = signo;
    stop_flag = 1;
    wake();
    errno = saved;
}

static void close_pipe(void)
{
    wake_fd = -1;
    for (int i = 0; i < 2; i++) {
        if (pipe_fds[i] >= 0)
            close(pipe_fds[i]);
        pipe_fds[i] = -1;
    }
}

int kf_signals_install(kf_error *err)
{
    if (installed)
        return KF_OK;
    if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return kf_error_set(err, KF_ERR_IO, false, "could not create the signal pipe: %s",
                            strerror(errno));
    stop_flag = 0;
    last_signal = 0;
    atomic_flag_clear(&got_signal);
    wake_fd = pipe_fds[1];

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    struct sigaction ignore;
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);

    int saved_errno;
    if (sigaction(SIGPIPE, &ignore, &old_pipe) != 0)
        goto out_close_pipe;
    if (sigaction(SIGINT, &sa, &old_int) != 0)
        goto out_restore_pipe;
    if (sigaction(SIGTERM, &sa, &old_term) != 0)
        goto out_restore_int;
    installed = true;
    return KF_OK;

out_restore_int:
    saved_errno = errno;
    sigaction(SIGINT, &old_int, NULL);
    errno = saved_errno;
out_restore_pipe:
    saved_errno = errno;
    sigaction(SIGPIPE, &old_pipe, NULL);
    errno = saved_errno;
out_close_pipe:
    saved_errno = errno;
    close_pipe();
    return kf_error_set(err, KF_ERR_IO, false, "could not install signal handlers: %s",
                        strerror(saved_errno));
}

void kf_signals_uninstall(void)
{
    if (!installed)
        return;
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    close_pipe();
    stop_flag = 0;
    last_signal = 0;
    atomic_flag_clear(&got_signal);
    installed = false;
}

bool kf_signals_stop_requested(void)
{
    return stop_flag != 0;
}

int kf_signals_last(void)
{
    return last_signal;
}

void kf_signals_request_stop(void)
{
    stop_flag = 1;
    wake();
}

int kf_signals_fd(void)
{
    return installed ? pipe_fds[0] : -1;
}
