/* libFuzzer entry for what a user types: the input's first byte chooses
 *   0: `leantrain train` flags (the rest cut at newlines into argv), parsed
 *      and checked, written as training_args.json and read back to the same
 *      text, then the run's length and events (for a 1000-step epoch), the
 *      schedule, config overrides and optimizer they name, built as the
 *      trainer builds them;
 *   1: an optimizer name and optim_args (first and second line);
 *   2: an --lr_scheduler_type and its --lr_scheduler_kwargs, then the factor
 *      at a few steps and a few metric-driven steps;
 *   3: a config.json text;
 *   4: a flags file (training_args.json's form): refused with a message
 *      naming it, or read, written and read back to the same text.
 * Each must succeed or fail with a message; the sanitizers (undefined
 * behaviour among them: a number converted to a type it does not fit) do the
 * rest. A broken invariant calls __builtin_trap(). Build with `make fuzz`;
 * see fuzz/README.md. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "leantrain/optim.h"
#include "model/gpt2.h"
#include "train/args.h"
#include "train/events.h"
#include "train/schedule.h"

/* the input after its first byte, NUL-terminated, cut into at most `cap` lines */
static int lines(const uint8_t *data, size_t size, char *buf, char **out, int cap) {
    memcpy(buf, data, size);
    buf[size] = 0;
    int n = 0;
    for (char *p = buf; n < cap;) {
        out[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    return n;
}

static void schedule(const char *type, long warmup, long total, double lr, const char *kwargs) {
    char err[512] = "";
    static lt_sched s;
    if (lt_sched_init(&s, type, warmup, total, lr, kwargs, err, sizeof err) != LT_OK) {
        EXPECT(err[0]);
        return;
    }
    for (long step = 0; step <= total + 1; step += total / 7 + 1) (void)lt_sched_lr(&s, step);
    if (lt_sched_metric_driven(&s))
        for (int k = 0; k < 12; k++) lt_sched_metric_step(&s, k % 3 ? 1.0 / (k + 1) : 2.0);
}

/* flag sets parsed (or flags files read) and checked (fuzz/replay.c prints it: the seeds must get past the
   parser) */
long lt_fuzz_reached;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    static char buf[4097];
    char *ln[34];
    int mode = data[0] % 5;
    int n = lines(data + 1, size - 1, buf, ln + 1, 32);
    char err[1024] = "";
    if (mode == 0) {
        static lt_train_args a;
        lt_train_args_default(&a);
        if (lt_train_args_parse(&a, n, ln + 1, err, sizeof err) != LT_OK ||
            lt_train_args_check(&a, err, sizeof err) != LT_OK) {
            EXPECT(err[0]);
            return 0;
        }
        lt_fuzz_reached++;
        /* training_args.json's round trip: the flags written, read back into the defaults and written again are
           the same text */
        char *j1 = lt_train_args_to_json(&a), *j2 = NULL;
        static lt_train_args b;
        lt_train_args_default(&b);
        EXPECT(j1 && lt_train_args_from_json(&b, j1, "training_args.json", err, sizeof err) == LT_OK &&
               lt_train_args_check(&b, err, sizeof err) == LT_OK && (j2 = lt_train_args_to_json(&b)) != NULL &&
               !strcmp(j1, j2));
        free(j1), free(j2);
        lt_gpt2_config cfg;
        EXPECT(lt_gpt2_config_preset("gpt2", &cfg, err, sizeof err) == LT_OK);
        if (a.config_overrides[0] && lt_train_config_overrides(a.config_overrides, &cfg, err, sizeof err) != LT_OK)
            EXPECT(err[0]);
        /* the run's length and events as the trainer resolves them, for an epoch of 1000 steps */
        long total = lt_train_total_steps(&a, 1000);
        if (total > 0) {
            long warmup = lt_steps_resolve(a.warmup_steps, total);
            EXPECT(warmup >= 0);
            lt_events ev = lt_events_make(&a, total, 1000);
            for (long step = 1; step <= total && step <= 3000; step += 7) (void)lt_events_at(&ev, step);
            (void)lt_events_at(&ev, total);
        }
        schedule(a.lr_scheduler_type, 3, 100, a.learning_rate, a.lr_scheduler_kwargs);
        lt_hparams hp = {a.learning_rate, a.adam_beta1, a.adam_beta2, a.adam_epsilon, a.weight_decay};
        lt_optim *o = lt_optim_create(a.optim, a.optim_args, &hp, err, sizeof err);
        if (!o) EXPECT(err[0]);
        lt_optim_free(o);
    } else if (mode == 1) {
        lt_hparams hp = lt_hparams_default();
        lt_optim *o = lt_optim_create(ln[1], n > 1 ? ln[2] : "", &hp, err, sizeof err);
        if (!o) {
            EXPECT(err[0]);
            return 0;
        }
        float w[8] = {1, -2, 3, -4, 5, -6, 7, -8}, g[8] = {0.5f, 0.25f, -1, 2, 0, -0.5f, 1, 3};
        lt_param_desc d = {.name = "w", .data = w, .grad = g, .ndim = 2, .shape = {2, 4}};
        if (lt_optim_add_param(o, &d) == 0) (void)lt_optim_step(o, 1.0f);
        lt_optim_free(o);
    } else if (mode == 2) {
        schedule(ln[1], 0, 100, 1e-3, n > 1 ? ln[2] : "");
        schedule(ln[1], 10, 100, 1e-3, n > 1 ? ln[2] : "");
    } else if (mode == 4) {
        /* a flags file (the whole input after the first byte): refused with the file named, or flags that go
           through training_args.json and back to the same text */
        memcpy(buf, data + 1, size - 1);
        buf[size - 1] = 0;
        static lt_train_args a, b;
        lt_train_args_default(&a);
        lt_status st = lt_train_args_from_json(&a, buf, "flags.json", err, sizeof err);
        if (st != LT_OK) EXPECT(!strncmp(err, "flags.json: ", 12));
        if (st != LT_OK || lt_train_args_finish(&a, err, sizeof err) != LT_OK) {
            EXPECT(err[0]);
            return 0;
        }
        lt_fuzz_reached++;
        char *j1 = lt_train_args_to_json(&a), *j2 = NULL;
        lt_train_args_default(&b);
        EXPECT(j1 && lt_train_args_from_json(&b, j1, "training_args.json", err, sizeof err) == LT_OK &&
               lt_train_args_finish(&b, err, sizeof err) == LT_OK && (j2 = lt_train_args_to_json(&b)) != NULL &&
               !strcmp(j1, j2));
        free(j1), free(j2);
    } else {
        lt_gpt2_config cfg;
        if (lt_gpt2_config_from_json(buf, "config.json", &cfg, err, sizeof err) != LT_OK) {
            EXPECT(!strncmp(err, "config.json", 11));
            return 0;
        }
        EXPECT(lt_gpt2_config_check(&cfg, err, sizeof err) == LT_OK);
        (void)lt_gpt2_config_num_params(&cfg);
    }
    return 0;
}
