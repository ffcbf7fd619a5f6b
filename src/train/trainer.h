/* The training loop of `leantrain train`: model, data, optimizer with the
 * Trainer's two parameter groups, scheduler, accumulation, clipping, logging,
 * evaluation, checkpoints and resume. */
#ifndef LT_TRAIN_TRAINER_H
#define LT_TRAIN_TRAINER_H

#include "train/args.h"

/* Runs a training job. Progress goes to stdout (a progress bar when stdout is
 * a terminal, plain lines otherwise), errors to stderr as one line naming the
 * flag or file. Returns the process exit status: 0 when the run finished, 1
 * on an error, 128 + sig when lt_train_request_stop(sig) stopped it. */
int lt_train_run(const lt_train_args *a);

/* Asks the running (or next) lt_train_run to stop at the end of the
 * optimizer step in progress: it then saves checkpoint-<step> (unless
 * --save_strategy no, or that step's checkpoint exists already), from which
 * --resume_from_checkpoint continues exactly as an uninterrupted run would,
 * and returns 128 + sig. Only sets a flag, so it is async-signal-safe: meant
 * for a SIGINT / SIGTERM handler (cli/cmd_train.c installs one). The first
 * request's sig is kept. */
void lt_train_request_stop(int sig);

#endif
