/* The trainer's invariants below the command line: gradient accumulation (k
 * micro-batches of b, each scaled by 1/k, equal one batch of k*b to fp32
 * rounding), the data order (a function of (seed, epoch) only: seeking to a
 * position gives the same batches as getting there), and the steps that log,
 * evaluate and save against the ones the Hugging Face Trainer itself chose
 * (tests/data/trainer_events.json, scripts/make-trainer-events.py), and
 * --auto_find_batch_size's batch sizes against the ones accelerate tries
 * (tests/data/auto_batch.json, scripts/make-auto-batch-reference.py). */
#include <cjson/cJSON.h>
#include <math.h>

#include "model/gpt2.h"
#include "testutil.h"
#include "train/args.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/events.h"
#include "train/memplan.h"

/* a case's flags (a JSON object) as leantrain's argv, parsed by leantrain's own parser */
static int parse_flags(const cJSON *flags, lt_train_args *a, char *err, size_t errlen) {
    char *argv[40], buf[40][32];
    int argc = 0;
    const cJSON *fl;
    cJSON_ArrayForEach(fl, flags) {
        if (argc + 2 > 40) break;
        snprintf(buf[argc], sizeof buf[argc], "--%s", fl->string);
        argv[argc] = buf[argc], argc++;
        if (cJSON_IsBool(fl)) snprintf(buf[argc], sizeof buf[argc], "%s", cJSON_IsTrue(fl) ? "true" : "false");
        else if (cJSON_IsString(fl)) snprintf(buf[argc], sizeof buf[argc], "%s", fl->valuestring);
        else snprintf(buf[argc], sizeof buf[argc], "%.17g", fl->valuedouble);
        argv[argc] = buf[argc], argc++;
    }
    lt_train_args_default(a);
    return lt_train_args_parse(a, argc, argv, err, errlen) == LT_OK;
}

/* the steps of `which` (LT_EV_*) in 1..total as "a b c " into out */
static void event_steps(const lt_events *ev, long total, int which, char *out, size_t n) {
    size_t k = 0;
    out[0] = 0;
    for (long s = 1; s <= total && k + 24 < n; s++)
        if (lt_events_at(ev, s) & which) k += (size_t)snprintf(out + k, n - k, "%ld ", s);
}

/* a JSON array of steps as "a b c " (extra: one more step, appended when absent) */
static void json_steps(const cJSON *arr, long extra, char *out, size_t n) {
    size_t k = 0;
    long last = -1;
    out[0] = 0;
    for (const cJSON *v = arr ? arr->child : NULL; v && k + 24 < n; v = v->next)
        k += (size_t)snprintf(out + k, n - k, "%ld ", last = (long)v->valuedouble);
    if (extra > 0 && last != extra) snprintf(out + k, n - k, "%ld ", extra);
}

/* The best model against the Trainer's: its evaluation losses replayed through leantrain's rules (the events,
 * lt_best_improves, save_strategy best, lt_ckpt_rotation after each save, only the best left at the end with
 * save_total_limit 1): the same best step and the same checkpoints left. */
static void check_trainer_best(const cJSON *cases) {
    char err[512];
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        lt_train_args a;
        if (!parse_flags(cJSON_GetObjectItem(c, "flags"), &a, err, sizeof err)) {
            CHECK(0, "best case %d: %s", n, err);
            continue;
        }
        const long total = a.max_steps;
        const lt_events ev = lt_events_make(&a, total, 4);
        const cJSON *evals = cJSON_GetObjectItem(c, "evals")->child;
        long present[64], np = 0, best_step = -1;
        double best = 0;
        int order_ok = 1;
        for (long s = 1; s <= total; s++) {
            const int due = lt_events_at(&ev, s);
            int new_best = 0;
            if (due & LT_EV_EVAL) {
                if (!evals || (long)evals->child->valuedouble != s) {
                    order_ok = 0;
                    break;
                }
                const double v = evals->child->next->valuedouble;
                evals = evals->next;
                new_best = lt_best_improves(v, best, best_step >= 0, lt_train_args_greater_is_better(&a));
                if (new_best) best = v, best_step = s;
            }
            if ((due & LT_EV_SAVE) || (new_best && !strcmp(a.save_strategy, "best"))) {
                present[np++] = s;
                const int doomed = lt_ckpt_rotation(present, (int)np, a.save_total_limit, best_step);
                long kept[64], nk = 0;
                for (long i = doomed; i < np; i++) kept[nk++] = present[i];
                for (long i = 0; i < nk; i++) /* back in step order */
                    for (long j = i + 1; j < nk; j++)
                        if (kept[j] < kept[i]) {
                            long t = kept[i];
                            kept[i] = kept[j], kept[j] = t;
                        }
                memcpy(present, kept, (size_t)nk * sizeof *kept);
                np = nk;
            }
        }
        CHECK(order_ok && !evals, "best case %d: the evaluations are not at the Trainer's steps", n);
        if (a.save_total_limit == 1 && best_step >= 0) {
            int has = 0;
            for (long i = 0; i < np; i++) has |= present[i] == best_step;
            if (has) present[0] = best_step, np = 1;
        }
        char ours[256], theirs[256];
        size_t k = 0;
        ours[0] = 0;
        for (long i = 0; i < np; i++) k += (size_t)snprintf(ours + k, sizeof ours - k, "%ld ", present[i]);
        json_steps(cJSON_GetObjectItem(c, "kept"), 0, theirs, sizeof theirs);
        const long hf_best = (long)cJSON_GetObjectItem(c, "best_global_step")->valuedouble;
        CHECK(!strcmp(ours, theirs) && best_step == hf_best, "best case %d: best step %ld, kept [%s]; the Trainer's %ld, [%s]",
              n, best_step, ours, hf_best, theirs);
        n++;
    }
    printf("trainer best model: %d cases of the Trainer's best step and kept checkpoints matched\n", n);
    CHECK(n >= 7, "only %d best-model cases", n);
}

/* a test data file's text (NULL, with a failed check, when unreadable) */
static char *read_data(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", lt_test_data_dir(), name);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot read %s", path);
    if (!f) return NULL;
    char *text = calloc(1, 1 << 20);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = 0;
    return text;
}

/* --auto_find_batch_size: the sizes lt_auto_batch_next steps through from each start, until 0, are the ones
 * accelerate's find_executable_batch_size tried when every one ran out of memory; and the batch the planner
 * picks is the first of them whose plan fits, the one before it not fitting (the Trainer's stopping point when
 * the plan is the truth), for limits on both sides of each plan total. */
static void check_auto_batch(void) {
    char *text = read_data("auto_batch.json");
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(root != NULL, "bad JSON in auto_batch.json");
    int nseq = 0;
    const cJSON *seq;
    cJSON_ArrayForEach(seq, cJSON_GetObjectItem(root, "sequences")) {
        int b = atoi(seq->string), i = 0, ok = 1;
        const cJSON *v;
        cJSON_ArrayForEach(v, seq) {
            ok &= b == v->valueint;
            b = lt_auto_batch_next(b), i++;
        }
        CHECK(ok && b == 0 && i == cJSON_GetArraySize(seq), "start %s: leantrain's sizes differ from accelerate's",
              seq->string);
        nseq++;
    }
    CHECK(nseq >= 130, "only %d sequences in auto_batch.json", nseq);
    cJSON_Delete(root);

    lt_gpt2_config cfg = {256, 64, 64, 2, 2, 1e-5, 0, 0, 0};
    for (int device = 0; device < 2; device++) {
        lt_mem_methods me = {
            .gradient_checkpointing = device, .precision = device ? LT_GPT2_BF16 : LT_GPT2_F32, .device = device};
        char err[512];
        lt_mem_table t, tf;
        size_t plan[40];
        for (int b = 1; b < 40; b++) {
            CHECK(lt_memplan(&cfg, b, 64, "adamw_torch_fused", "", &me, 100000, &t, err, sizeof err) == LT_OK, "%s",
                  err);
            plan[b] = t.total;
            CHECK(b == 1 || plan[b] > plan[b - 1], "device %d: the plan does not grow from batch %d to %d", device,
                  b - 1, b);
        }
        for (int b = 1; b < 39; b++)
            for (int side = 0; side < 2; side++) {
                const size_t limit = plan[b] + (side ? (plan[b + 1] - plan[b]) / 2 : 0); /* b fits, b + 1 not */
                int tried[8], n;
                size_t bytes[8];
                const int mb = lt_memplan_max_batch(&cfg, 64, "adamw_torch_fused", "", &me, 100000, limit, err,
                                                    sizeof err);
                CHECK(mb == b, "device %d, limit %zu: largest batch %d, expected %d", device, limit, mb, b);
                const int fb = lt_memplan_find_batch(&cfg, 39, 64, "adamw_torch_fused", "", &me, 100000, limit, &tf,
                                                     tried, bytes, 8, &n, err, sizeof err);
                int want = 39;
                while (want > b) want = lt_auto_batch_next(want);
                CHECK(fb == want && tf.total == plan[fb], "device %d, limit %zu: auto batch %d (%zu bytes), expected %d",
                      device, limit, fb, tf.total, want);
                CHECK(n >= 1 && tried[0] == 39 && bytes[0] == plan[39] && tried[n < 8 ? n - 1 : 7] >= fb,
                      "device %d: the sizes tried start at %d", device, tried[0]);
            }
        int tried[1], n;
        size_t bytes[1];
        CHECK(lt_memplan_find_batch(&cfg, 8, 64, "adamw_torch_fused", "", &me, 100000, plan[1] - 1, &tf, tried, bytes,
                                    1, &n, err, sizeof err) == 0 && n == 8 && tf.total == plan[1],
              "device %d: below batch 1's plan no batch should fit (tried %d)", device, n);
        CHECK(lt_memplan_max_batch(&cfg, 64, "adamw_torch_fused", "", &me, 100000, plan[1] - 1, err, sizeof err) == 0,
              "device %d: below batch 1's plan the largest batch should be 0", device);
    }
}

/* Each case's flags through leantrain's own parser, its events against the Trainer's: evaluations and saves
 * the same steps; log lines the same plus the last step, where leantrain always logs unless logging_strategy is
 * no (a documented difference: the Trainer ends with a summary line instead). */
static void check_trainer_events(void) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/trainer_events.json", lt_test_data_dir());
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot read %s", path);
    if (!f) return;
    char *text = calloc(1, 1 << 20);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = 0;
    cJSON *root = cJSON_Parse(text);
    CHECK(root != NULL, "bad JSON in %s", path);
    int ncases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        lt_train_args a;
        if (!parse_flags(cJSON_GetObjectItem(c, "flags"), &a, err, sizeof err)) {
            CHECK(0, "case %d: %s", ncases, err);
            continue;
        }
        const long per = (long)cJSON_GetObjectItem(c, "steps_per_epoch")->valuedouble;
        const long total = lt_train_total_steps(&a, per);
        CHECK(total > 0, "case %d: no length", ncases);
        const lt_events ev = lt_events_make(&a, total, per);
        char ours[512], theirs[512];
        const struct {
            int which;
            const char *key;
        } kinds[3] = {{LT_EV_LOG, "log"}, {LT_EV_EVAL, "eval"}, {LT_EV_SAVE, "save"}};
        for (int k = 0; k < 3; k++) {
            event_steps(&ev, total, kinds[k].which, ours, sizeof ours);
            const long extra = kinds[k].which == LT_EV_LOG && strcmp(a.logging_strategy, "no") ? total : 0;
            json_steps(cJSON_GetObjectItem(c, kinds[k].key), extra, theirs, sizeof theirs);
            CHECK(!strcmp(ours, theirs), "case %d (%s): %s at [%s], the Trainer's [%s]", ncases,
                  cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "flags")), kinds[k].key, ours, theirs);
        }
        ncases++;
    }
    printf("trainer events: %d cases of the Trainer's log / evaluate / save steps matched\n", ncases);
    /* lengths past what a long holds are refused (their conversion was undefined behaviour), and an eval_delay
     * past any run means no evaluation */
    {
        lt_train_args a;
        lt_train_args_default(&a);
        a.num_train_epochs = 2.5;
        CHECK(lt_train_total_steps(&a, 10) == 25, "2.5 epochs of 10 steps: %ld", lt_train_total_steps(&a, 10));
        a.num_train_epochs = 1e300;
        CHECK(lt_train_total_steps(&a, 10) == -1, "1e300 epochs: %ld", lt_train_total_steps(&a, 10));
        a.num_train_epochs = 9e14;
        CHECK(lt_train_total_steps(&a, 10) == 9000000000000000L, "9e14 epochs of 10: %ld", lt_train_total_steps(&a, 10));
        a.max_steps = 7;
        CHECK(lt_train_total_steps(&a, 10) == 7, "max_steps 7: %ld", lt_train_total_steps(&a, 10));
        snprintf(a.eval_strategy, sizeof a.eval_strategy, "steps");
        a.eval_steps = 1, a.eval_delay = 1e300;
        const lt_events ev = lt_events_make(&a, 7, 10);
        int evals = 0;
        for (long step = 1; step <= 7; step++) evals += (lt_events_at(&ev, step) & LT_EV_EVAL) != 0;
        CHECK(evals == 0, "eval_delay 1e300: %d evaluations", evals);
    }
    CHECK(ncases >= 10, "only %d cases in %s", ncases, path);
    check_trainer_best(cJSON_GetObjectItem(root, "best"));
    cJSON_Delete(root);
    free(text);
}

/* training_args.json: the flags written and read back are the same flags (every field: the text written again is
 * the same), awkward values included: a seed and a count past 2^53 (a JSON number would round them), a learning
 * rate that needs 17 digits, a ratio of steps, quotes, a backslash and UTF-8 in a string, a flag left to its
 * default by name (null); the run_clm forms a user writes
 * by hand are taken (an object for a *_kwargs flag, report_to as a list); a flag after the file overrides it;
 * text after the object, an unknown flag and a mistyped value are refused with the file and the flag named */
static void check_args_json(void) {
    char err[1024], path[600];
    lt_train_args a, b;
    char *argv[] = {"--seed", "18446744073709551557", "--data_seed", "9007199254740992", "--warmup_steps", "0.125",
                    "--run_name", "a \"quoted\" back\\slash \xc3\xbc", "--learning_rate", "3.0000000000000001e-4",
                    "--lr_scheduler_kwargs", "{\"min_lr_rate\": 0.1}", "--lr_scheduler_type", "cosine_with_min_lr",
                    "--max_eval_samples", "3962214748364851516"}; /* (fuzz_args found the count) */
    lt_train_args_default(&a);
    CHECK(lt_train_args_parse(&a, (int)(sizeof argv / sizeof *argv), argv, err, sizeof err) == LT_OK, "%s", err);
    char *j1 = lt_train_args_to_json(&a), *j2 = NULL;
    CHECK(j1 && strstr(j1, "\"seed\":\t\"18446744073709551557\"") && strstr(j1, "\"data_seed\":\t9007199254740992,") &&
              strstr(j1, "\"greater_is_better\":\tnull") && !strstr(j1, "evaluation_strategy"),
          "training_args.json: a seed, the unset flag or an alias written wrongly:\n%s", j1 ? j1 : "(null)");
    snprintf(path, sizeof path, "%s/training_args.json", lt_test_tmp_dir());
    CHECK(lt_write_text_file(path, j1 ? j1 : "", err, sizeof err) == LT_OK, "%s", err);
    char *argv2[] = {path};
    lt_train_args_default(&b);
    CHECK(lt_train_args_parse(&b, 1, argv2, err, sizeof err) == LT_OK, "%s", err);
    j2 = lt_train_args_to_json(&b);
    CHECK(j1 && j2 && !strcmp(j1, j2), "training_args.json read back wrote other text:\n%s", j2 ? j2 : "(null)");
    CHECK(b.seed == 18446744073709551557ull && b.warmup_steps == 0.125 && b.learning_rate == a.learning_rate &&
              a.learning_rate != 3e-4 && /* the double next to 3e-4: 17 digits, which cJSON's printing drops */
              !strcmp(b.run_name, a.run_name) && b.max_eval_samples == 3962214748364851516l,
          "training_args.json read back: seed %llu, warmup %g, lr %.17g, run_name %s", b.seed, b.warmup_steps,
          b.learning_rate, b.run_name);
    free(j2);
    char *argv3[] = {path, "--learning_rate", "1e-3", "--seed", "5"};
    lt_train_args_default(&b);
    CHECK(lt_train_args_parse(&b, 5, argv3, err, sizeof err) == LT_OK && b.learning_rate == 1e-3 && b.seed == 5 &&
              b.data_seed == 9007199254740992ull,
          "flags after training_args.json: lr %g seed %llu data_seed %llu (%s)", b.learning_rate, b.seed, b.data_seed,
          err);
    free(j1);
    /* hand-written run_clm forms */
    lt_train_args_default(&b);
    CHECK(lt_train_args_from_json(&b, "{\"report_to\": [\"none\"], \"gradient_checkpointing_kwargs\": "
                                      "{\"use_reentrant\": false}, \"max_steps\": 12, \"bf16\": true, \"eval_steps\": null}",
                                  "hand.json", err, sizeof err) == LT_OK &&
              lt_train_args_check(&b, err, sizeof err) == LT_OK,
          "hand-written flags refused: %s", err);
    CHECK(!strcmp(b.report_to, "none") && !strcmp(b.gradient_checkpointing_kwargs, "{\"use_reentrant\":false}") &&
              b.max_steps == 12 && b.bf16 == 1,
          "hand-written flags: report_to %s, kwargs %s, max_steps %ld, bf16 %d", b.report_to,
          b.gradient_checkpointing_kwargs, b.max_steps, b.bf16);
    static const char *const refused[][2] = {
        {"{\"max_steps\": 12} {\"bf16\": true}", "x.json: not a JSON object of flags"},
        {"[\"--max_steps\", 12]", "x.json: not a JSON object of flags"},
        {"{\"max_step\": 12}", "x.json: unknown flag \"max_step\""},
        {"{\"max_steps\": 12.5}", "x.json: --max_steps: bad value '12.5': expected an integer"},
        {"{\"bf16\": \"yes\"}", "x.json: --bf16: bad value 'yes': expected true or false"},
        {"{\"report_to\": [\"wandb\", \"tensorboard\"]}", "x.json: \"report_to\": expected a string"},
    };
    for (size_t k = 0; k < sizeof refused / sizeof *refused; k++) {
        lt_train_args_default(&b);
        err[0] = 0;
        CHECK(lt_train_args_from_json(&b, refused[k][0], "x.json", err, sizeof err) == LT_ERR_ARG &&
                  strstr(err, refused[k][1]),
              "flags file %s: got '%s', expected '%s'", refused[k][0], err, refused[k][1]);
    }
}

int main(void) {
    char err[1024];
    lt_gpt2_config cfg = {256, 32, 48, 2, 4, 1e-5, 0, 0, 0};
    lt_gpt2 *m = NULL;
    CHECK(lt_gpt2_create(&cfg, &m, err, sizeof err) == LT_OK, "%s", err);
    if (!m) return lt_test_done("test_train");
    lt_gpt2_init_random(m, 5);
    enum { B = 4, T = 24, K = 2 };
    CHECK(lt_gpt2_set_batch(m, K * B, T, err, sizeof err) == LT_OK, "%s", err);
    int32_t in[K * B * T], tg[K * B * T];
    uint64_t st = 9;
    for (int i = 0; i < K * B * T; i++) in[i] = (int32_t)(lt_splitmix64(&st) % 256), tg[i] = (int32_t)(lt_splitmix64(&st) % 256);

    /* one batch of K*B */
    lt_gpt2_zero_grad(m);
    CHECK(lt_gpt2_forward(m, in, tg, K * B, T, err, sizeof err) == LT_OK, "%s", err);
    float big_loss = m->loss;
    CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
    float *ref = malloc(m->memory_floats * sizeof *ref);
    memcpy(ref, m->grad_memory, m->memory_floats * sizeof *ref);

    /* K micro-batches of B, accumulated; the trainer folds 1/K into the optimizer's gradient scale */
    lt_gpt2_zero_grad(m);
    double loss = 0;
    for (int k = 0; k < K; k++) {
        CHECK(lt_gpt2_forward(m, in + k * B * T, tg + k * B * T, B, T, err, sizeof err) == LT_OK, "%s", err);
        loss += m->loss / K;
        CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
    }
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < m->memory_floats; i++) {
        double d = fabs((double)m->grad_memory[i] / K - (double)ref[i]);
        if (d > worst) worst = d;
        if (fabs(ref[i]) > gmax) gmax = fabs(ref[i]);
    }
    printf("accumulation: |loss diff| %.3g, max |grad diff| %.3g (max |grad| %.3g)\n", fabs(loss - big_loss), worst,
           gmax);
    CHECK(fabs(loss - big_loss) <= 1e-6 * fabs(big_loss), "loss: %.9g vs %.9g", loss, (double)big_loss);
    /* fp32 rounding of sums over a few hundred terms: 1e-5 of the largest gradient */
    CHECK(worst <= 1e-5 * gmax, "accumulated gradients differ by %.3g (max |grad| %.3g)", worst, gmax);

    /* gradient checkpointing: the same gradients, bit for bit, from fewer stored activations */
    size_t full_acts = m->act_floats;
    lt_gpt2_set_checkpointing(m, 1);
    CHECK(lt_gpt2_set_batch(m, K * B, T, err, sizeof err) == LT_OK, "%s", err);
    lt_gpt2_zero_grad(m);
    CHECK(lt_gpt2_forward(m, in, tg, K * B, T, err, sizeof err) == LT_OK, "%s", err);
    CHECK(m->loss == big_loss, "checkpointed loss %.9g vs %.9g", (double)m->loss, (double)big_loss);
    CHECK(lt_gpt2_backward(m, err, sizeof err) == LT_OK, "%s", err);
    CHECK(memcmp(m->grad_memory, ref, m->memory_floats * sizeof *ref) == 0,
          "gradients with checkpointing differ from those without");
    printf("checkpointing: activation floats %zu -> %zu\n", full_acts, m->act_floats);
    CHECK(m->act_floats < full_acts, "checkpointing did not reduce the activation memory");
    free(ref);
    lt_gpt2_free(m);

    /* data order: seeking reproduces the batches */
    char path[512];
    snprintf(path, sizeof path, "%s/data_order.txt", lt_test_tmp_dir());
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 5000; i++) fputc('a' + i * 7 % 26, f);
    fclose(f);
    lt_data d1, d2;
    CHECK(lt_data_open(&d1, path, NULL, 10.0, 16, 256, 77, err, sizeof err) == LT_OK, "%s", err);
    CHECK(lt_data_open(&d2, path, NULL, 10.0, 16, 256, 77, err, sizeof err) == LT_OK, "%s", err);
    int32_t a_in[3 * 16], a_tg[3 * 16], b_in[3 * 16], b_tg[3 * 16];
    for (int s = 0; s < 200; s++) lt_data_next(&d1, 3, a_in, a_tg); /* crosses epochs (281 blocks / 3) */
    lt_data_seek(&d2, d1.epoch, d1.index);
    lt_data_next(&d1, 3, a_in, a_tg);
    lt_data_next(&d2, 3, b_in, b_tg);
    CHECK(d1.epoch >= 2, "expected to cross epochs, at epoch %ld", d1.epoch);
    CHECK(!memcmp(a_in, b_in, sizeof a_in) && !memcmp(a_tg, b_tg, sizeof a_tg), "seek did not reproduce the batch");
    int shift_ok = 1;
    for (int i = 0; i + 1 < 16; i++) shift_ok &= a_tg[i] == a_in[i + 1];
    CHECK(shift_ok, "targets are not the inputs shifted by one");
    CHECK(d1.n_train_blocks == (4500 - 1) / 16 && d1.n_val_blocks == (500 - 1) / 16, "split: %zu / %zu blocks",
          d1.n_train_blocks, d1.n_val_blocks);
    /* short batches (run_clm's layout, the Trainer's dataloader): 281 blocks in batches of 8 are 35 whole batches
     * and one of 1; with accumulation 10, 3 steps of 10 batches and a last of 6 (5 whole, the short one);
     * the step's rows are known before it is drawn, an epoch's end starts the next epoch's first batch, and every
     * block of an epoch is drawn once */
    lt_data_seek(&d1, 0, 0);
    d1.layout = LT_DATA_RUN_CLM; /* the Trainer's epochs */
    CHECK(lt_data_steps_per_epoch(&d1, 8, 10) == 4 && lt_data_steps_per_epoch(&d1, 8, 4) == 9 &&
              lt_data_steps_per_epoch(&d1, 8, 1) == 36 && lt_data_steps_per_epoch(&d1, 300, 4) == 1,
          "steps per epoch with short batches: %ld %ld %ld %ld (4 9 36 1 expected)",
          lt_data_steps_per_epoch(&d1, 8, 10), lt_data_steps_per_epoch(&d1, 8, 4), lt_data_steps_per_epoch(&d1, 8, 1),
          lt_data_steps_per_epoch(&d1, 300, 4));
    int32_t s_in[8 * 16], s_tg[8 * 16];
    static unsigned char seen[281];
    long total = 0;
    for (int st = 0; st < 4; st++) {
        int micro;
        const long want = lt_data_step_rows(&d1, 8, 10, &micro);
        long got = 0;
        for (int k = 0; k < micro; k++) {
            const int rows = lt_data_next(&d1, 8, s_in, s_tg);
            for (int r = 0; r < rows; r++) seen[d1.order[d1.index - (size_t)rows + (size_t)r]]++;
            got += rows;
        }
        CHECK(got == want && micro == (st < 3 ? 10 : 6) && want == (st < 3 ? 80 : 41),
              "step %d: %ld rows in %d micro-batches, %ld announced", st, got, micro, want);
        total += got;
    }
    int once = 1;
    for (int i = 0; i < 281; i++) once &= seen[i] == 1;
    CHECK(total == 281 && once && d1.epoch == 0 && d1.index == 281, "an epoch of short batches: %ld rows", total);
    CHECK(fabs(lt_data_epoch_float(&d1, 8) - 1.0) < 1e-15, "epoch float at the epoch's end: %.17g",
          lt_data_epoch_float(&d1, 8));
    int micro1;
    CHECK(lt_data_step_rows(&d1, 8, 4, &micro1) == 32 && micro1 == 4 && lt_data_next(&d1, 8, s_in, s_tg) == 8 &&
              d1.epoch == 1 && d1.index == 8,
          "after the short batch the next epoch begins (epoch %ld, index %zu)", d1.epoch, d1.index);
    CHECK(fabs(lt_data_epoch_float(&d1, 8) - (1.0 + 1.0 / 36.0)) < 1e-15, "epoch float after one batch: %.17g",
          lt_data_epoch_float(&d1, 8));
    /* drop_last (dataloader_drop_last): 35 whole batches an epoch, the last block left out; steps of 10 10 10 5 */
    d1.drop_last = 1;
    lt_data_seek(&d1, 0, 0);
    CHECK(lt_data_steps_per_epoch(&d1, 8, 10) == 4 && lt_data_steps_per_epoch(&d1, 8, 7) == 5,
          "steps per epoch with drop_last: %ld %ld (4 5 expected)", lt_data_steps_per_epoch(&d1, 8, 10),
          lt_data_steps_per_epoch(&d1, 8, 7));
    for (int st = 0; st < 4; st++) {
        int micro;
        const long want = lt_data_step_rows(&d1, 8, 10, &micro);
        long got = 0;
        for (int k = 0; k < micro; k++) got += lt_data_next(&d1, 8, s_in, s_tg);
        CHECK(got == want && micro == (st < 3 ? 10 : 5) && want == (st < 3 ? 80 : 40),
              "drop_last step %d: %ld rows in %d micro-batches, %ld announced", st, got, micro, want);
    }
    CHECK(d1.epoch == 0 && d1.index == 280 && fabs(lt_data_epoch_float(&d1, 8) - 1.0) < 1e-15,
          "drop_last: the epoch ends at block 280 (epoch %ld, index %zu, %.17g)", d1.epoch, d1.index,
          lt_data_epoch_float(&d1, 8));
    CHECK(lt_data_step_rows(&d1, 8, 10, &micro1) == 80 && lt_data_next(&d1, 8, s_in, s_tg) == 8 && d1.epoch == 1 &&
              d1.index == 8,
          "drop_last: the block left over starts no batch (epoch %ld, index %zu)", d1.epoch, d1.index);
    d1.drop_last = 0;
    d1.layout = LT_DATA_STREAM; /* the stream layout's whole batches: floor(floor(281 / 8) / 4) steps */
    CHECK(lt_data_steps_per_epoch(&d1, 8, 4) == 8 && lt_data_step_rows(&d1, 8, 4, &micro1) == 32 && micro1 == 4,
          "whole batches: %ld steps an epoch", lt_data_steps_per_epoch(&d1, 8, 4));
    lt_data_close(&d1), lt_data_close(&d2);
    check_trainer_events();
    check_args_json();
    check_auto_batch();
    return lt_test_done("test_train");
}
