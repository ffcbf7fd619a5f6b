/* The training loop of `leantrain train`: model, data, optimizer with the
 * Trainer's two parameter groups, scheduler, accumulation, clipping, logging,
 * evaluation, checkpoints and resume. */
#ifndef LT_TRAIN_TRAINER_H
#define LT_TRAIN_TRAINER_H

#include "train/args.h"

/* Runs a training job. Progress goes to stdout (a progress bar when stdout is
 * a terminal, plain lines otherwise), errors to stderr as one line naming the
 * flag or file. Returns the process exit status (0 on success). */
int lt_train_run(const lt_train_args *a);

#endif
