/* `leantrain train`: the Trainer-style command line (flags in train/args.c). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "train/args.h"
#include "train/trainer.h"

/* SIGINT (Ctrl-C), SIGTERM (kill, a batch scheduler's preemption) and SIGHUP (the terminal closed) ask the
 * trainer to stop after the step in progress, with a checkpoint; the handlers then go back to the default, so
 * a second signal ends the process at once (a checkpoint being written is then simply absent: they are
 * written under a temporary name and renamed when complete). Only async-signal-safe calls here. */
static void on_stop_signal(int sig) {
    static const char msg_int[] = "\nleantrain train: interrupted: stopping after this step and saving a checkpoint; "
                                  "press Ctrl-C again to quit at once\n";
    static const char msg_other[] = "\nleantrain train: asked to stop: finishing this step and saving a checkpoint; "
                                    "a second signal quits at once\n";
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    lt_train_request_stop(sig);
    ssize_t n = sig == SIGINT ? write(STDERR_FILENO, msg_int, sizeof msg_int - 1)
                              : write(STDERR_FILENO, msg_other, sizeof msg_other - 1);
    (void)n;
}

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART; /* reads and writes in progress go on: the step finishes */
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        struct sigaction old;
        /* a signal the caller ignores (nohup's SIGHUP, a background job's SIGINT) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

int lt_cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            lt_train_args_usage(stdout);
            return 0;
        }
    lt_train_args a;
    lt_train_args_default(&a);
    char err[1024];
    if (lt_train_args_parse(&a, argc - 1, argv + 1, err, sizeof err) != LT_OK) {
        fprintf(stderr, "leantrain train: %s\n", err);
        return 2;
    }
    /* a log file or a pipe (nohup, a batch system) gets each line as it is printed, as a terminal does */
    setvbuf(stdout, NULL, _IOLBF, 0);
    catch_stop_signals();
    return lt_train_run(&a);
}
