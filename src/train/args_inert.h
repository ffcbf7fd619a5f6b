/* The Trainer's flags, and run_clm's own, that `leantrain train` takes without an effect (one process on one
 * device, no Python data loader, no Hub client or cache, no predictions kept), so that a run_clm command line or a
 * TrainingArguments JSON dump runs as it is; and the values of theirs that ask for something leantrain does not
 * do, which it refuses with the reason. */
#ifndef LT_TRAIN_ARGS_INERT_H
#define LT_TRAIN_ARGS_INERT_H

#include <stddef.h>

/* What becomes of flag `name` with `value` (its text: "true" for a flag given alone, a list or object as its JSON
 * text): 1 when name is not one of these flags; 0 when it is taken (without effect); -1 when the value asks for
 * what leantrain lacks, with one line in err naming the flag, the value, why and what to do. */
int lt_train_arg_inert(const char *name, const char *value, char *err, size_t errlen);

/* Whether `name` is one of these flags and a boolean one (a boolean flag may be given alone: --flag). */
int lt_train_arg_inert_bool(const char *name);

/* The names of these flags, comma-separated in lines of about 110 characters (the lines after the first indented by
 * two spaces), for the usage text (a static string). */
const char *lt_train_arg_inert_names(void);

#endif
