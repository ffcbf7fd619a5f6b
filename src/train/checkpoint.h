/* Checkpoint folders, as the Trainer lays them out: output_dir/checkpoint-<step>/
 * with config.json, model.safetensors, optimizer.safetensors and
 * trainer_state.json.
 *
 * Crash safety: a checkpoint is written into output_dir/.tmp-checkpoint-<step>-<pid>/
 * (each file fsync'ed), the folder is fsync'ed and renamed to checkpoint-<step>,
 * then output_dir is fsync'ed. A process killed at any moment leaves either the
 * complete new checkpoint or none under that name; lt_ckpt_latest only
 * considers checkpoint-<N> folders, and lt_ckpt_clean_tmp removes leftovers. */
#ifndef LT_TRAIN_CHECKPOINT_H
#define LT_TRAIN_CHECKPOINT_H

#include <stddef.h>

#include "leantrain/optim.h"
#include "model/gpt2.h"
#include "tokenizer/tokenizer.h"

/* Writes checkpoint-<step> under output_dir (created if missing), with the
 * tokenizer's files when tok is not NULL and the optimizer's state when o is
 * not NULL (--save_only_model: NULL), trainer_state.json and, when
 * training_args_json is not NULL, training_args.json (the run's flags,
 * lt_train_args_to_json), all in one atomic rename; then deletes the oldest
 * checkpoints beyond save_total_limit (0 keeps all), never checkpoint-<keep>
 * (the best model's; -1: none), as the Trainer rotates them: the best counts
 * as the second newest, and a limit of 1 keeps 2 while the best is not the
 * newest. */
lt_status lt_ckpt_save(const char *output_dir, long step, const lt_gpt2 *m, lt_optim *o, const lt_tokenizer *tok,
                       const char *trainer_state_json, const char *training_args_json, int save_total_limit, long keep,
                       char *err, size_t errlen);

/* save_total_limit's choice (0 keeps all): given the steps of the checkpoints
 * present in ascending order, reorders them so that the first k returned are
 * the ones to delete, never `keep` (the best model's; -1: none): the best
 * counts as the second newest, and a limit of 1 keeps 2 while the best is not
 * the newest (the Trainer's _sorted_checkpoints and _rotate_checkpoints). */
int lt_ckpt_rotation(long *steps, int n, int save_total_limit, long keep);

/* Deletes every checkpoint-<N> under output_dir but checkpoint-<keep>, if
 * that one exists (then returns 1; else deletes nothing and returns 0). */
int lt_ckpt_keep_only(const char *output_dir, long keep);

/* The model alone into folder dir (created if missing), as run_clm's final save_model leaves output_dir:
 * model.safetensors, config.json and, when tok is not NULL, the tokenizer's files, and when training_args_json is
 * not NULL training_args.json, each written atomically. */
lt_status lt_ckpt_save_model(const char *dir, const lt_gpt2 *m, const lt_tokenizer *tok,
                             const char *training_args_json, char *err, size_t errlen);

/* The newest complete checkpoint folder under output_dir into out; LT_ERR_IO
 * with a message when there is none. */
lt_status lt_ckpt_latest(const char *output_dir, char *out, size_t outlen, char *err, size_t errlen);

/* Number of checkpoint-<N> folders under output_dir (0 when it does not exist). */
int lt_ckpt_count(const char *output_dir);

/* Removes .tmp-checkpoint-* folders that a killed run left in output_dir. */
void lt_ckpt_clean_tmp(const char *output_dir);

/* Writes a Hugging Face GPT-2 config.json for cfg to path, atomically. */
lt_status lt_ckpt_write_config(const char *path, const lt_gpt2_config *cfg, char *err, size_t errlen);

/* Writes text to path atomically (temporary file, fsync, rename). */
lt_status lt_write_text_file(const char *path, const char *text, char *err, size_t errlen);

/* Reads a whole small file (trainer_state.json) into a malloc'd string. */
char *lt_read_text_file(const char *path, char *err, size_t errlen);

#endif
