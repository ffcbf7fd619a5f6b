/* Learning-rate schedulers: every value transformers' get_scheduler produced
 * (tests/data/schedules.json, scripts/make-schedule-reference.py) for every
 * scheduler name, several warmup/total pairs and option sets, plus the
 * formulas of optimizers.md at a few hand-computed points and the errors. */
#include <cjson/cJSON.h>
#include <math.h>

#include "testutil.h"
#include "train/schedule.h"

/* "k=v,k=v" as the Trainer's JSON form ('{"k": v}': numbers as numbers, the rest as strings), into out */
static void kv_to_json(const char *kv, char *out, size_t n) {
    cJSON *o = cJSON_CreateObject();
    char buf[512], *save = NULL;
    snprintf(buf, sizeof buf, "%s", kv);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '='), *end;
        if (!eq) continue;
        *eq = 0;
        double d = strtod(eq + 1, &end);
        if (*end || end == eq + 1) cJSON_AddStringToObject(o, tok, eq + 1);
        else cJSON_AddNumberToObject(o, tok, d);
    }
    char *t = cJSON_PrintUnformatted(o);
    snprintf(out, n, "%s", t ? t : "");
    free(t);
    cJSON_Delete(o);
}

int main(void) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/schedules.json", lt_test_data_dir());
    char *text = lt_test_read_file(path, NULL);
    CHECK(text != NULL, "cannot read %s", path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK(root != NULL, "bad JSON in %s", path);
    int nsched = 0, nvals = 0, njson = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "schedules")) {
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        const char *kw = cJSON_GetObjectItem(e, "kwargs")->valuestring;
        long W = (long)cJSON_GetObjectItem(e, "warmup")->valuedouble, N = (long)cJSON_GetObjectItem(e, "total")->valuedouble;
        double lr = cJSON_GetObjectItem(e, "lr")->valuedouble;
        lt_sched s;
        if (lt_sched_init(&s, name, W, N, lr, kw, err, sizeof err) != LT_OK) {
            CHECK(0, "%s [%s]: %s", name, kw, err);
            continue;
        }
        /* the same options as a JSON object (the Trainer's form of the flag): the same schedule */
        char js[600];
        lt_sched sj;
        kv_to_json(kw, js, sizeof js);
        const int json_ok = !kw[0] || lt_sched_init(&sj, name, W, N, lr, js, err, sizeof err) == LT_OK;
        CHECK(json_ok, "%s [%s]: %s", name, js, err);
        double worst = 0;
        long at = -1;
        int step = 0, json_same = 1;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(e, "lrs")) {
            double ours = lr * lt_sched_factor(&s, step);
            double d = fabs(ours - v->valuedouble);
            if (d > worst) worst = d, at = step;
            if (kw[0] && json_ok) json_same &= lt_sched_factor(&sj, step) == lt_sched_factor(&s, step);
            step++, nvals++;
        }
        CHECK(json_same, "%s W=%ld N=%ld: %s gives another schedule than [%s]", name, W, N, js, kw);
        njson += kw[0] != 0;
        /* the reference is the same double formula: only the last bits may differ */
        CHECK(worst <= 1e-15, "%s W=%ld N=%ld [%s]: lr differs by %.3g at step %ld", name, W, N, kw, worst, at);
        nsched++;
    }
    printf("schedules: %d runs, %d values match transformers; %d with options, given as JSON too\n", nsched, nvals,
           njson);
    /* reduce_lr_on_plateau: the lr after each step(metric) of torch's ReduceLROnPlateau, to the bit (the same
     * double arithmetic: lr x factor, best x (1 -+ threshold)) */
    int nplat = 0, nmet = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "plateaus")) {
        const char *kw = cJSON_GetObjectItem(e, "kwargs")->valuestring;
        const double lr = cJSON_GetObjectItem(e, "lr")->valuedouble;
        lt_sched s;
        if (lt_sched_init(&s, "reduce_lr_on_plateau", 0, 100, lr, kw, err, sizeof err) != LT_OK) {
            CHECK(0, "reduce_lr_on_plateau [%s]: %s", kw, err);
            continue;
        }
        const cJSON *mv = cJSON_GetObjectItem(e, "metrics")->child, *lv = cJSON_GetObjectItem(e, "lrs")->child;
        int i = 0, same = 1;
        for (; mv && lv; mv = mv->next, lv = lv->next, i++, nmet++) {
            lt_sched_metric_step(&s, mv->valuedouble);
            if (same && lt_sched_lr(&s, i) != lv->valuedouble) {
                CHECK(0, "reduce_lr_on_plateau [%s]: after metric %d lr %.17g, torch %.17g", kw, i, lt_sched_lr(&s, i),
                      lv->valuedouble);
                same = 0;
            }
        }
        nplat++;
    }
    printf("reduce_lr_on_plateau: %d runs, %d steps match torch\n", nplat, nmet);
    CHECK(nplat >= 4, "only %d plateau runs in %s", nplat, path);
    /* greedy: the lr after each step(metric) of transformers' GreedyLR, to the bit; and a second scheduler that
     * takes over at every 7th metric from the first's saved state (lt_sched_state_save / _load through JSON text,
     * as a checkpoint's trainer_state.json carries it: counters, best, the smoothing window) follows it exactly */
    int ngreedy = 0, ngm = 0, nmoves = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "greedy")) {
        const char *kw = cJSON_GetObjectItem(e, "kwargs")->valuestring;
        const double lr = cJSON_GetObjectItem(e, "lr")->valuedouble;
        static lt_sched s, r; /* 8 KiB each: the window */
        if (lt_sched_init(&s, "greedy", 0, 100, lr, kw, err, sizeof err) != LT_OK ||
            lt_sched_init(&r, "greedy", 0, 100, lr, kw, err, sizeof err) != LT_OK) {
            CHECK(0, "greedy [%s]: %s", kw, err);
            continue;
        }
        const cJSON *mv = cJSON_GetObjectItem(e, "metrics")->child, *lv = cJSON_GetObjectItem(e, "lrs")->child;
        int i = 0, same = 1;
        for (; mv && lv; mv = mv->next, lv = lv->next, i++, ngm++) {
            const double before = lt_sched_lr(&s, i);
            const int moved = lt_sched_metric_step(&s, mv->valuedouble);
            lt_sched_metric_step(&r, mv->valuedouble);
            nmoves += moved != 0;
            if (same && (lt_sched_lr(&s, i) != lv->valuedouble || lt_sched_lr(&r, i) != lv->valuedouble ||
                         (moved != 0) != (lt_sched_lr(&s, i) != before))) {
                CHECK(0, "greedy [%s]: after metric %d lr %.17g (resumed %.17g, moved %d), transformers %.17g", kw, i,
                      lt_sched_lr(&s, i), lt_sched_lr(&r, i), moved, lv->valuedouble);
                same = 0;
            }
            if (i % 7 == 6) { /* r restarts from s's state, as a resumed run does */
                cJSON *j = cJSON_CreateObject();
                lt_sched_state_save(&s, j);
                char *text = cJSON_PrintUnformatted(j);
                cJSON *back = cJSON_Parse(text);
                CHECK(lt_sched_init(&r, "greedy", 0, 100, lr, kw, err, sizeof err) == LT_OK &&
                          lt_sched_state_load(&r, back, err, sizeof err) == LT_OK,
                      "greedy [%s]: reload: %s", kw, err);
                free(text);
                cJSON_Delete(j), cJSON_Delete(back);
            }
        }
        ngreedy++;
    }
    printf("greedy: %d runs, %d steps match transformers (%d moves), resumed every 7 steps\n", ngreedy, ngm, nmoves);
    {
        static lt_sched g;
        const struct {
            long warmup;
            const char *kw, *want;
        } bad[] = {{0, "factor=1", "greedy needs 0 < factor < 1"},
                   {0, "factor=0", "greedy needs 0 < factor < 1"},
                   {0, "window_size=2000", "window_size in 1..1024"},
                   {0, "max_lr=0", "max_lr > 0"},
                   {0, "smooth=maybe", "smooth 'maybe': expected true or false"},
                   {0, "reset_start=-1", "reset_start >= 0"},
                   {0, "warmup=-1e300", "warmup >= 0"}, /* a double past long's range: clamped, then refused */
                   {3, "", "greedy has no warmup"}};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            CHECK(lt_sched_init(&g, "greedy", bad[i].warmup, 100, 1e-3, bad[i].kw, err, sizeof err) == LT_ERR_ARG &&
                      strstr(err, bad[i].want),
                  "greedy [%s]: expected an error with '%s', got '%s'", bad[i].kw, bad[i].want, err);
        CHECK(lt_sched_init(&g, "greedy", 0, 100, 1e-3, "{\"smooth\": true, \"verbose\": false}", err, sizeof err) ==
                      LT_OK && g.smooth && g.factor == 0.95 && g.patience == 10 && g.threshold == 1e-6 &&
                  g.threshold_abs && g.min_lr == 1e-3 && g.max_lr == 1.0 && g.window == 50 && g.reset_start == 500,
              "greedy's defaults: %s", err);
        CHECK(lt_sched_init(&g, "greedy", 0, 100, 1e-3, "patience=1e300", err, sizeof err) == LT_OK &&
                  g.patience == 9007199254740992L,
              "greedy: patience 1e300 is not clamped to 2^53 (%ld): %s", g.patience, err);
        /* a saved state whose counters are not whole numbers from 0 to 2^53 is refused (their conversion to long
         * was undefined behaviour) */
        static const char *bad_state[] = {"{\"lr\": 1e-3, \"num_bad_epochs\": 1e300, \"cooldown_counter\": 0}",
                                          "{\"lr\": 1e-3, \"num_bad_epochs\": 0, \"cooldown_counter\": -1}",
                                          "{\"lr\": 1e-3, \"num_bad_epochs\": 0.5, \"cooldown_counter\": 0}"};
        for (int k = 0; k < 3; k++) {
            cJSON *j = cJSON_Parse(bad_state[k]);
            lt_sched_init(&g, "reduce_lr_on_plateau", 0, 100, 1e-3, NULL, err, sizeof err);
            CHECK(lt_sched_state_load(&g, j, err, sizeof err) == LT_ERR_FORMAT &&
                      strstr(err, "no reduce_lr_on_plateau state in lr_scheduler"),
                  "state %s accepted (%s)", bad_state[k], err);
            cJSON_Delete(j);
        }
    }
    CHECK(ngreedy >= 4 && nmoves >= 20, "only %d greedy runs (%d moves) in %s", ngreedy, nmoves, path);
    CHECK(njson >= 10, "only %d schedules with options", njson);
    CHECK(nsched >= 40, "only %d schedules in %s", nsched, path);
    cJSON_Delete(root);
    free(text);

    /* the formulas at hand-computed points: W = 10, N = 110 */
    lt_sched s;
    lt_sched_init(&s, "linear", 10, 110, 1e-3, NULL, err, sizeof err);
    CHECK(lt_sched_factor(&s, 0) == 0.0 && lt_sched_factor(&s, 5) == 0.5 && lt_sched_factor(&s, 10) == 1.0 &&
              lt_sched_factor(&s, 60) == 0.5 && lt_sched_factor(&s, 110) == 0.0 && lt_sched_factor(&s, 200) == 0.0,
          "linear");
    lt_sched_init(&s, "cosine", 10, 110, 1e-3, NULL, err, sizeof err);
    CHECK(fabs(lt_sched_factor(&s, 60) - 0.5) < 1e-15 && lt_sched_factor(&s, 10) == 1.0, "cosine midpoint");
    lt_sched_init(&s, "inverse_sqrt", 10, 110, 1e-3, NULL, err, sizeof err);
    CHECK(fabs(lt_sched_factor(&s, 40) - 0.5) < 1e-15, "inverse_sqrt: 1/sqrt(40/10) = 0.5");
    lt_sched_init(&s, "constant_with_warmup", 10, 110, 1e-3, NULL, err, sizeof err);
    CHECK(lt_sched_factor(&s, 3) == 0.3 && lt_sched_factor(&s, 50) == 1.0, "constant_with_warmup");
    lt_sched_init(&s, "cosine_with_min_lr", 10, 110, 1e-3, "min_lr=1e-4", err, sizeof err);
    CHECK(fabs(lt_sched_factor(&s, 110) - 0.1) < 1e-15, "cosine_with_min_lr ends at min_lr/lr");

    /* reduce_lr_on_plateau, stepped by hand-worked sequences of torch's ReduceLROnPlateau rules (is_better
     * against best x (1 - threshold) or best + threshold, then the cooldown, then more than `patience` bad
     * evaluations lower the lr to max(lr x factor, min_lr) if that moves it by more than eps) */
    {
        const double m1[] = {10, 9.5, 9.5, 8, 8, 8, 8, 8, 8};
        const double lr1[] = {1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
        const double lr2[] = {1, 1, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3}; /* min_lr 0.3: the last cut is below eps */
        const int cut1[] = {0, 0, -1, 0, 0, -1, 0, 0, -1}, cut2[] = {0, 0, -1, 0, 0, -1, 0, 0, 0};
        lt_sched p1, p2;
        int ok1 = lt_sched_init(&p1, "reduce_lr_on_plateau", 0, 100, 1.0,
                                "factor=0.5,patience=1,cooldown=1,threshold=0.1", err, sizeof err) == LT_OK;
        int ok2 = lt_sched_init(&p2, "reduce_lr_on_plateau", 0, 100, 1.0,
                                "{\"factor\": 0.5, \"patience\": 1, \"cooldown\": 1, \"threshold\": 0.1, \"min_lr\": 0.3}",
                                err, sizeof err) == LT_OK;
        CHECK(ok1 && ok2, "reduce_lr_on_plateau: %s", err);
        for (int i = 0; ok1 && ok2 && i < 9; i++) {
            int c1 = lt_sched_metric_step(&p1, m1[i]), c2 = lt_sched_metric_step(&p2, m1[i]);
            CHECK(c1 == cut1[i] && lt_sched_lr(&p1, i) == lr1[i], "plateau (min, rel) evaluation %d: lr %g cut %d", i,
                  lt_sched_lr(&p1, i), c1);
            CHECK(c2 == cut2[i] && lt_sched_lr(&p2, i) == lr2[i], "plateau (min_lr 0.3) evaluation %d: lr %g cut %d", i,
                  lt_sched_lr(&p2, i), c2);
        }
        /* max mode, absolute threshold 0.5, patience 0, torch's factor 0.1: 1 best; 1.4 not above 1.5: cut; 2
         * best; 2.2 not above 2.5: cut */
        const double m3[] = {1, 1.4, 2, 2.2}, lr3[] = {1, 0.1, 0.1, 0.1 * 0.1};
        lt_sched p3;
        int ok3 = lt_sched_init(&p3, "reduce_lr_on_plateau", 0, 100, 1.0, "mode=max,threshold_mode=abs,threshold=0.5,patience=0",
                                err, sizeof err) == LT_OK;
        CHECK(ok3, "%s", err);
        for (int i = 0; ok3 && i < 4; i++) {
            lt_sched_metric_step(&p3, m3[i]);
            CHECK(lt_sched_lr(&p3, i) == lr3[i], "plateau (max, abs) evaluation %d: lr %g", i, lt_sched_lr(&p3, i));
        }
        CHECK(lt_sched_init(&p3, "reduce_lr_on_plateau", 5, 100, 1.0, NULL, err, sizeof err) == LT_ERR_ARG &&
                  strstr(err, "reduce_lr_on_plateau has no warmup"), "%s", err);
        CHECK(lt_sched_init(&p3, "reduce_lr_on_plateau", 0, 100, 1.0, "factor=1", err, sizeof err) == LT_ERR_ARG &&
                  strstr(err, "0 <= factor < 1"), "%s", err);
        CHECK(lt_sched_init(&p3, "reduce_lr_on_plateau", 0, 100, 1.0, "mode=up", err, sizeof err) == LT_ERR_ARG &&
                  !strcmp(err, "--lr_scheduler_kwargs: mode 'up': expected min or max"), "%s", err);
        lt_sched lin;
        lt_sched_init(&lin, "linear", 0, 100, 1.0, NULL, err, sizeof err);
        CHECK(lt_sched_metric_step(&lin, 1.0) == 0 && lt_sched_lr(&lin, 50) == 0.5, "another scheduler took a metric");
    }

    /* errors name the flag */
    CHECK(lt_sched_init(&s, "cosine_annealing", 0, 10, 1e-3, NULL, err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "--lr_scheduler_type 'cosine_annealing' is not supported; choose one of: linear cosine "
                           "cosine_with_restarts polynomial constant constant_with_warmup inverse_sqrt "
                           "cosine_with_min_lr cosine_warmup_with_min_lr warmup_stable_decay reduce_lr_on_plateau greedy"),
          "%s", err);
    CHECK(lt_sched_init(&s, "polynomial", 0, 10, 1e-3, "power=x", err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "--lr_scheduler_kwargs: bad value 'x' for 'power': expected a number"),
          "%s", err);
    CHECK(lt_sched_init(&s, "cosine", 0, 10, 1e-3, "{\"num_cycles\": 0.5", err, sizeof err) == LT_ERR_ARG &&
              strstr(err, "is not a JSON object"),
          "%s", err);
    CHECK(lt_sched_init(&s, "cosine", 0, 10, 1e-3, "{\"num_cycles\": [1]}", err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "--lr_scheduler_kwargs: bad value '(not a number or a string)' for 'num_cycles': expected a number"),
          "%s", err);
    CHECK(lt_sched_init(&s, "cosine", 0, 10, 1e-3, "{\"cycles\": 1}", err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "--lr_scheduler_kwargs: unknown key 'cycles'"),
          "%s", err);
    CHECK(lt_sched_init(&s, "warmup_stable_decay", 0, 10, 1e-3, NULL, err, sizeof err) == LT_ERR_ARG &&
              !strcmp(err, "warmup_stable_decay needs num_decay_steps in --lr_scheduler_kwargs"),
          "%s", err);
    return lt_test_done("test_schedule");
}
