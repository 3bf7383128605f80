/* Graceful shutdown: SIGINT/SIGTERM ask the program to stop, a second one exits at once, and
 * SIGPIPE is ignored so a closed socket is an error return, not a death. */
#ifndef KFLEET_SIGNALS_H
#define KFLEET_SIGNALS_H

#include <stdbool.h>

#include "kfleet/error.h"

/* Installs the handlers with sigaction(2): the first SIGINT or SIGTERM sets the stop flag and
 * makes kf_signals_fd() readable; a second one calls _exit(128 + signo) from the handler
 * (130 for SIGINT, 143 for SIGTERM) without running atexit handlers or flushing stdio. SIGPIPE
 * is ignored. Calling it again while installed does nothing. Returns 0, or KF_ERR_IO with err
 * filled (could not create the wake-up pipe or install a handler; nothing stays installed). */
int kf_signals_install(kf_error *err);

/* Restores the dispositions found by kf_signals_install, closes the wake-up pipe and clears the
 * stop state. A no-op when not installed. Not async-signal-safe: call from main only. */
void kf_signals_uninstall(void);

/* True once a stop signal arrived or kf_signals_request_stop() was called. Cheap: a load of a
 * volatile sig_atomic_t, fine to call per loop iteration. */
bool kf_signals_stop_requested(void);

/* The signal that requested the stop (SIGINT, SIGTERM), or 0 (none, or a programmatic stop). */
int kf_signals_last(void);

/* Asks the program to stop as if a first signal had arrived, without counting as a signal (so
 * a later SIGTERM still gets the graceful path once more). Async-signal-safe and callable from
 * any thread, e.g. by a worker thread that hit a fatal error and wants the main loop to wind
 * down. */
void kf_signals_request_stop(void);

/* A non-blocking descriptor that becomes readable when a stop is requested, for poll(2) loops.
 * It stays readable (never drain it). -1 when not installed. Owned by this module. */
int kf_signals_fd(void);

#endif
