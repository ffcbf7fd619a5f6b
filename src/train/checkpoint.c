/* Checkpoint folders: atomic creation, rotation, discovery (see checkpoint.h). */
#define _XOPEN_SOURCE 700
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/json_number.h"

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static void fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static lt_status mkdir_p(const char *path, char *err, size_t errlen) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) goto fail;
            *p = '/';
        }
    if (mkdir(buf, 0777) && errno != EEXIST) goto fail;
    return LT_OK;
fail:
    snprintf(err, errlen, "%s: cannot create the folder: %s", buf, strerror(errno));
    return LT_ERR_IO;
}

lt_status lt_write_text_file(const char *path, const char *text, char *err, size_t errlen) {
    lt_atomic_file *af = NULL;
    lt_status st = lt_atomic_open(path, &af, err, errlen);
    if (st == LT_OK) st = lt_atomic_write(af, text, strlen(text), err, errlen);
    if (st == LT_OK) return lt_atomic_commit(af, err, errlen);
    if (af) lt_atomic_abort(af);
    return st;
}

lt_status lt_ckpt_write_config(const char *path, const lt_gpt2_config *c, char *err, size_t errlen) {
    char text[1024], pe[32], pr[32], pa[32], eps[32];
    snprintf(text, sizeof text,
             "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n  \"vocab_size\": %d,\n"
             "  \"n_positions\": %d,\n  \"n_ctx\": %d,\n  \"n_embd\": %d,\n  \"n_layer\": %d,\n  \"n_head\": %d,\n"
             "  \"layer_norm_epsilon\": %s,\n  \"activation_function\": \"gelu_new\",\n"
             "  \"embd_pdrop\": %s,\n  \"resid_pdrop\": %s,\n  \"attn_pdrop\": %s,\n"
             "  \"tie_word_embeddings\": true\n}\n",
             c->vocab_size, c->n_positions, c->n_positions, c->n_embd, c->n_layer, c->n_head,
             lt_double_shortest(eps, sizeof eps, c->layer_norm_epsilon),
             lt_double_shortest(pe, sizeof pe, c->embd_pdrop), lt_double_shortest(pr, sizeof pr, c->resid_pdrop),
             lt_double_shortest(pa, sizeof pa, c->attn_pdrop));
    return lt_write_text_file(path, text, err, errlen);
}

/* checkpoint-<N> folder names under dir, returning N (or -1) */
static long ckpt_step(const char *name) {
    if (strncmp(name, "checkpoint-", 11) || !name[11]) return -1;
    char *end;
    long n = strtol(name + 11, &end, 10);
    return *end || n < 0 ? -1 : n;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* sorted steps of the checkpoint folders (caller frees); *n their count */
static long *list_steps(const char *dir, int *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    long *steps = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long s = ckpt_step(e->d_name);
        if (s < 0) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            long *ns = realloc(steps, (size_t)cap * sizeof *ns);
            if (!ns) break;
            steps = ns;
        }
        steps[(*n)++] = s;
    }
    closedir(d);
    if (steps) qsort(steps, (size_t)*n, sizeof *steps, cmp_long);
    return steps;
}

int lt_ckpt_count(const char *output_dir) {
    int n;
    free(list_steps(output_dir, &n));
    return n;
}

void lt_ckpt_clean_tmp(const char *output_dir) {
    DIR *d = opendir(output_dir);
    if (!d) return;
    struct dirent *e;
    char path[1400];
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, ".tmp-checkpoint-", 16)) {
            snprintf(path, sizeof path, "%s/%s", output_dir, e->d_name);
            rm_rf(path);
        }
    closedir(d);
}

int lt_ckpt_rotation(long *steps, int n, int save_total_limit, long keep) {
    if (save_total_limit <= 0) return 0;
    int limit = save_total_limit;
    for (int i = 0; i < n - 1; i++)
        if (steps[i] == keep) {
            /* the best moves to the second newest place (the Trainer's _sorted_checkpoints) */
            for (int j = i; j < n - 2; j++) steps[j] = steps[j + 1];
            steps[n - 2] = keep;
            if (limit == 1) limit = 2;
            break;
        }
    return n > limit ? n - limit : 0;
}

int lt_ckpt_keep_only(const char *output_dir, long keep) {
    char path[1400];
    struct stat sb;
    snprintf(path, sizeof path, "%.1200s/checkpoint-%ld", output_dir, keep);
    if (stat(path, &sb) != 0) return 0;
    int n;
    long *steps = list_steps(output_dir, &n);
    for (int i = 0; steps && i < n; i++)
        if (steps[i] != keep) {
            snprintf(path, sizeof path, "%.1200s/checkpoint-%ld", output_dir, steps[i]);
            rm_rf(path);
        }
    free(steps);
    return 1;
}

lt_status lt_ckpt_save(const char *output_dir, long step, const lt_gpt2 *m, lt_optim *o, const lt_tokenizer *tok,
                       const char *trainer_state_json, const char *training_args_json, int save_total_limit, long keep,
                       char *err, size_t errlen) {
    char tmp[1200], fin[1200], path[1400];
    lt_status st = mkdir_p(output_dir, err, errlen);
    if (st) return st;
    snprintf(tmp, sizeof tmp, "%s/.tmp-checkpoint-%ld-%ld", output_dir, step, (long)getpid());
    snprintf(fin, sizeof fin, "%s/checkpoint-%ld", output_dir, step);
    rm_rf(tmp);
    if (mkdir(tmp, 0777)) {
        snprintf(err, errlen, "%s: cannot create the folder: %s", tmp, strerror(errno));
        return LT_ERR_IO;
    }
    snprintf(path, sizeof path, "%s/config.json", tmp);
    if ((st = lt_ckpt_write_config(path, &m->cfg, err, errlen))) goto fail;
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    if ((st = lt_gpt2_save(m, path, err, errlen))) goto fail;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    if (o && (st = lt_optim_save(o, path))) {
        snprintf(err, errlen, "%s", lt_optim_error(o));
        goto fail;
    }
    if (tok && (st = lt_tokenizer_save(tok, tmp, err, errlen))) goto fail;
    if (getenv("LT_TEST_KILL_DURING_SAVE") && atol(getenv("LT_TEST_KILL_DURING_SAVE")) == step)
        kill(getpid(), 9); /* the crash-safety test: a real SIGKILL with the checkpoint half written */
    snprintf(path, sizeof path, "%s/training_args.json", tmp);
    if (training_args_json && (st = lt_write_text_file(path, training_args_json, err, errlen))) goto fail;
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    if ((st = lt_write_text_file(path, trainer_state_json, err, errlen))) goto fail;
    fsync_dir(tmp);
    rm_rf(fin); /* a checkpoint of the same step from an earlier run */
    if (rename(tmp, fin)) {
        snprintf(err, errlen, "%s: cannot rename to %s: %s", tmp, fin, strerror(errno));
        st = LT_ERR_IO;
        goto fail;
    }
    fsync_dir(output_dir);
    if (save_total_limit > 0) {
        int n;
        long *steps = list_steps(output_dir, &n);
        const int doomed = steps ? lt_ckpt_rotation(steps, n, save_total_limit, keep) : 0;
        for (int i = 0; i < doomed; i++) {
            snprintf(path, sizeof path, "%s/checkpoint-%ld", output_dir, steps[i]);
            rm_rf(path);
        }
        free(steps);
    }
    return LT_OK;
fail:
    rm_rf(tmp);
    return st;
}

lt_status lt_ckpt_save_model(const char *dir, const lt_gpt2 *m, const lt_tokenizer *tok,
                             const char *training_args_json, char *err, size_t errlen) {
    char path[1400];
    lt_status st = mkdir_p(dir, err, errlen);
    if (st) return st;
    snprintf(path, sizeof path, "%.1200s/training_args.json", dir);
    if (training_args_json && (st = lt_write_text_file(path, training_args_json, err, errlen))) return st;
    snprintf(path, sizeof path, "%.1200s/model.safetensors", dir);
    if ((st = lt_gpt2_save(m, path, err, errlen))) return st;
    if (tok && (st = lt_tokenizer_save(tok, dir, err, errlen))) return st;
    snprintf(path, sizeof path, "%.1200s/config.json", dir);
    return lt_ckpt_write_config(path, &m->cfg, err, errlen);
}

lt_status lt_ckpt_latest(const char *output_dir, char *out, size_t outlen, char *err, size_t errlen) {
    int n;
    long *steps = list_steps(output_dir, &n);
    for (int i = n - 1; i >= 0; i--) {
        char st_path[1400];
        snprintf(st_path, sizeof st_path, "%s/checkpoint-%ld/trainer_state.json", output_dir, steps[i]);
        if (access(st_path, R_OK) == 0) {
            snprintf(out, outlen, "%s/checkpoint-%ld", output_dir, steps[i]);
            free(steps);
            return LT_OK;
        }
    }
    free(steps);
    snprintf(err, errlen, "--resume_from_checkpoint latest: no checkpoint-<step> folder with a trainer_state.json in %s",
             output_dir);
    return LT_ERR_IO;
}

char *lt_read_text_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 && n < (64L << 20) ? malloc((size_t)n + 1) : NULL;
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "%s: cannot read", path);
        free(b);
        fclose(f);
        return NULL;
    }
    b[n] = 0;
    fclose(f);
    return b;
}
