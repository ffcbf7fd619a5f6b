/* Every error path of the optimizer API returns a message that names the
 * thing at fault; these are the exact texts users see. A failed load leaves
 * the optimizer unchanged. */
#include <stdint.h>
#include <unistd.h>

#include "leantrain/optim.h"
#include "leantrain/safetensors.h"
#include "testutil.h"

static void expect_create_error(const char *name, const char *args, const char *want) {
    char err[1024] = "";
    lt_optim *o = lt_optim_create(name, args, NULL, err, sizeof err);
    CHECK(o == NULL, "create(%s, %s) succeeded", name, args);
    CHECK(strcmp(err, want) == 0, "create(%s, %s):\n  got:  %s\n  want: %s", name, args, err, want);
    lt_optim_free(o);
}

static void expect_prefix(const char *got, const char *want_prefix) {
    CHECK(strncmp(got, want_prefix, strlen(want_prefix)) == 0, "\n  got:  %s\n  want: %s...", got, want_prefix);
}

static float W[20], G[20], W2[20];

static lt_optim *make(const char *name, const char *args, int64_t r, int64_t c, float *w) {
    char err[512];
    lt_hparams hp = lt_hparams_default();
    lt_optim *o = lt_optim_create(name, args, &hp, err, sizeof err);
    CHECK(o != NULL, "%s", err);
    lt_param_desc d = {.name = "w", .data = w, .grad = G, .ndim = 2, .shape = {r, c}};
    CHECK(lt_optim_add_param(o, &d) == 0, "%s", lt_optim_error(o));
    return o;
}

static void write_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
}

/* dst: the state file src with metadata entry key set to value (tensors as they are) */
static void rewrite_meta(const char *src, const char *dst, const char *key, const char *value) {
    char err[512];
    lt_st_file *f = NULL;
    CHECK(lt_st_open(src, &f, err, sizeof err) == LT_OK, "%s", err);
    if (!f) return;
    lt_st_writer *w = lt_st_writer_new();
    for (size_t i = 0; i < lt_st_count(f); i++) {
        const lt_st_tensor *t = lt_st_at(f, i);
        CHECK(lt_st_writer_add(w, t->name, (lt_dtype)t->lt_type, t->ndim, t->shape, t->data) == LT_OK, "add %s",
              t->name);
    }
    for (size_t i = 0; i < lt_st_meta_count(f); i++) {
        const char *k, *v;
        lt_st_meta_at(f, i, &k, &v);
        CHECK(lt_st_writer_meta(w, k, strcmp(k, key) ? v : value) == LT_OK, "meta %s", k);
    }
    CHECK(lt_st_writer_write(w, dst, err, sizeof err) == LT_OK, "%s", err);
    lt_st_writer_free(w);
    lt_st_close(f);
}

int main(void) {
    expect_create_error("adamw_foo", "", "unknown optimizer name 'adamw_foo'; supported: adamw_torch adamw_torch_fused "
                        "adamw_apex_fused paged_adamw_32bit adam adamw_anyprecision sgd adagrad rmsprop lion_32bit "
                        "paged_lion_32bit adafactor adamw_bnb_8bit adamw_8bit paged_adamw_8bit lion_8bit paged_lion_8bit "
                        "adamw_torch_8bit adamw_torch_4bit");
    expect_create_error("adamw_torch", "momentum=0.9",
                        "optim_args: unknown key 'momentum' for optimizer family adamw (accepted: lr, beta1, beta2, "
                        "eps, weight_decay, amsgrad, bf16_stochastic_round)");
    expect_create_error("sgd", "momentum=abc", "optim_args: bad value 'abc' for key 'momentum': expected a finite number");
    expect_create_error("sgd", "momentum=1e999", "optim_args: bad value '1e999' for key 'momentum': expected a finite number");
    expect_create_error("sgd", "momentum", "optim_args: malformed entry 'momentum': expected key=value");
    expect_create_error("sgd", "=0.9", "optim_args: malformed entry '=0.9': expected key=value");
    expect_create_error("sgd", "momentum=0.9,,nesterov=True",
                        "optim_args: malformed 'momentum=0.9,,nesterov=True': empty entry between commas");
    expect_create_error("sgd", "nesterov=yes", "optim_args: bad value 'yes' for key 'nesterov': expected True or False");
    expect_create_error("sgd", "nesterov=True", "sgd: nesterov=True requires momentum > 0 and dampening = 0");
    expect_create_error("adamw_anyprecision", "momentum_dtype=float16",
                        "optim_args: bad value 'float16' for key 'momentum_dtype': expected float32 or bfloat16");
    expect_create_error("adamw_torch", "beta1=1.0", "adamw_torch: invalid beta1 1: must be in [0, 1)");
    expect_create_error("adafactor", "relative_step=True",
                        "adafactor: cannot combine a manual lr (5e-05) with relative_step=True: pass lr=None or "
                        "relative_step=False");
    expect_create_error("adafactor", "warmup_init=True", "adafactor: warmup_init=True requires relative_step=True");
    expect_create_error("adamw_torch_4bit", "block_size=100",
                        "adamw_torch_4bit: invalid block_size 100: must be a power of two from 64 to 4096");
    expect_create_error("adamw_bnb_8bit", "block_size=8192",
                        "adamw_bnb_8bit: invalid block_size 8192: must be a power of two from 64 to 4096");
    expect_create_error("adamw_torch_8bit", "min_8bit_size=10",
                        "optim_args: unknown key 'min_8bit_size' for optimizer family torchao_adamw8bit (accepted: lr, "
                        "beta1, beta2, eps, weight_decay, block_size, bf16_stochastic_round)");

    /* API misuse */
    lt_optim *o = make("adamw_torch", "", 4, 5, W);
    lt_param_desc dup = {.name = "w", .data = W2, .grad = G, .ndim = 1, .shape = {20}};
    CHECK(lt_optim_add_param(o, &dup) == -1, "duplicate name accepted");
    CHECK(!strcmp(lt_optim_error(o), "add_param: parameter 'w' is already registered"), "%s", lt_optim_error(o));
    lt_param_desc badg = {.name = "v", .data = W2, .grad = G, .ndim = 1, .shape = {20}, .group = 3};
    CHECK(lt_optim_add_param(o, &badg) == -1, "bad group accepted");
    CHECK(!strcmp(lt_optim_error(o), "add_param: parameter 'v': group 3 does not exist (1 group)"), "%s",
          lt_optim_error(o));
    CHECK(lt_optim_add_group(o, "weight_decay=x") == -1, "bad override accepted");
    CHECK(!strcmp(lt_optim_error(o), "group 1: bad value 'x' for key 'weight_decay': expected a finite number"), "%s",
          lt_optim_error(o));
    CHECK(lt_optim_set_lr(o, 2, 1e-3) == LT_ERR_ARG, "bad group lr accepted");
    CHECK(!strcmp(lt_optim_error(o), "group 2 does not exist (the optimizer has 1 group)"), "%s", lt_optim_error(o));
    lt_param_desc nog = {.name = "nograd", .data = W2, .ndim = 1, .shape = {20}};
    CHECK(lt_optim_add_param(o, &nog) == 1, "%s", lt_optim_error(o));
    CHECK(lt_optim_step(o, 1.0f) == LT_ERR_STATE, "step without a gradient succeeded");
    CHECK(!strcmp(lt_optim_error(o), "step: parameter 'nograd' has no gradient (set it with add_param or set_grad)"),
          "%s", lt_optim_error(o));
    lt_optim_free(o);

    /* load errors */
    char path[512], bad[600];
    snprintf(path, sizeof path, "%s/errors_state.safetensors", lt_test_tmp_dir());
    for (int i = 0; i < 20; i++) W[i] = (float)i, G[i] = 0.1f * (float)(i % 3);
    lt_optim *src = make("adamw_torch", "", 4, 5, W);
    lt_optim_step(src, 1.0f);
    CHECK(lt_optim_save(src, path) == LT_OK, "%s", lt_optim_error(src));

    lt_optim *t = make("adamw_torch", "", 5, 4, W2);
    CHECK(lt_optim_load(t, path) == LT_ERR_FORMAT, "shape mismatch accepted");
    snprintf(bad, sizeof bad, "%s: state tensor 'w.exp_avg' has shape [4, 5], expected [5, 4]", path);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    CHECK(lt_optim_param_step(t, 0) == 0, "failed load changed the step count");
    lt_optim_free(t);

    t = make("adamw_anyprecision", "momentum_dtype=bfloat16", 4, 5, W2);
    CHECK(lt_optim_load(t, path) == LT_ERR_FORMAT, "optimizer mismatch accepted");
    snprintf(bad, sizeof bad, "%s: state of optimizer 'adamw_torch' cannot be loaded into 'adamw_anyprecision'", path);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    lt_optim_free(t);

    /* dtype mismatch: bf16 momentum saved, f32 expected by the same name */
    char path2[512];
    snprintf(path2, sizeof path2, "%s/errors_state_bf16.safetensors", lt_test_tmp_dir());
    lt_optim *sb = make("adamw_anyprecision", "momentum_dtype=bfloat16", 4, 5, W2);
    CHECK(lt_optim_save(sb, path2) == LT_OK, "%s", lt_optim_error(sb));
    t = make("adamw_anyprecision", "", 4, 5, W2);
    CHECK(lt_optim_load(t, path2) == LT_ERR_FORMAT, "dtype mismatch accepted");
    snprintf(bad, sizeof bad, "%s: state tensor 'w.exp_avg' has dtype BF16, expected F32", path2);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    lt_optim_free(t), lt_optim_free(sb);

    /* a missing parameter state */
    t = make("adamw_torch", "", 4, 5, W2);
    lt_param_desc extra = {.name = "extra", .data = W, .grad = G, .ndim = 1, .shape = {20}};
    lt_optim_add_param(t, &extra);
    CHECK(lt_optim_load(t, path) == LT_ERR_FORMAT, "missing state accepted");
    snprintf(bad, sizeof bad, "%s: no valid step count for parameter 'extra' (a whole number from 0 to 2^53)", path);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    lt_optim_free(t);

    /* step counts a double holds but an int64 does not (their conversion was undefined behaviour, found by
     * fuzz/fuzz_optim_state under UBSan), negative or fractional ones: refused, the optimizer unchanged */
    static const char *bad_steps[] = {"{\"w\": 1e300}", "{\"w\": 1e17}", "{\"w\": -1}",
                                      "{\"w\": 2.5}", "{\"w\": \"3\"}"};
    char edited[512];
    snprintf(edited, sizeof edited, "%s/errors_steps.safetensors", lt_test_tmp_dir());
    for (int k = 0; k < 5; k++) {
        rewrite_meta(path, edited, "steps", bad_steps[k]);
        t = make("adamw_torch", "", 4, 5, W2);
        CHECK(lt_optim_load(t, edited) == LT_ERR_FORMAT, "steps %s accepted", bad_steps[k]);
        snprintf(bad, sizeof bad, "%s: no valid step count for parameter 'w' (a whole number from 0 to 2^53)", edited);
        CHECK(!strcmp(lt_optim_error(t), bad), "steps %s:\n  got:  %s\n  want: %s", bad_steps[k], lt_optim_error(t),
              bad);
        CHECK(lt_optim_param_step(t, 0) == 0, "a refused step count changed the optimizer");
        lt_optim_free(t);
    }
    rewrite_meta(path, edited, "steps", "{\"w\": 9007199254740992}"); /* 2^53: the largest taken */
    t = make("adamw_torch", "", 4, 5, W2);
    CHECK(lt_optim_load(t, edited) == LT_OK, "%s", lt_optim_error(t));
    CHECK(lt_optim_param_step(t, 0) == 9007199254740992LL, "step %lld", (long long)lt_optim_param_step(t, 0));
    lt_optim_free(t);

    /* a group's hyperparameters that its family refuses: the message names the file and the group */
    rewrite_meta(path, edited, "groups",
                 "[{\"lr\": 0.001, \"beta1\": 1.5, \"beta2\": 0.999, \"eps\": 1e-08, \"weight_decay\": 0}]");
    t = make("adamw_torch", "", 4, 5, W2);
    CHECK(lt_optim_load(t, edited) == LT_ERR_FORMAT, "beta1 1.5 accepted");
    snprintf(bad, sizeof bad, "%s: group 0: invalid beta1 1.5: must be in [0, 1)", edited);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    lt_optim_free(t);

    /* truncated and corrupt files */
    FILE *f = fopen(path, "rb");
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char cut[512];
    snprintf(cut, sizeof cut, "%s/errors_truncated.safetensors", lt_test_tmp_dir());
    write_bytes(cut, buf, n - 7);
    t = make("adamw_torch", "", 4, 5, W2);
    CHECK(lt_optim_load(t, cut) == LT_ERR_FORMAT, "truncated file accepted");
    snprintf(bad, sizeof bad, "%s: ", cut);
    expect_prefix(lt_optim_error(t), bad);
    CHECK(strstr(lt_optim_error(t), "tensor 'w.exp_avg_sq'") != NULL, "message does not name the tensor: %s",
          lt_optim_error(t));
    write_bytes(cut, buf, 5);
    CHECK(lt_optim_load(t, cut) == LT_ERR_FORMAT, "5-byte file accepted");
    snprintf(bad, sizeof bad, "%s: file is 5 bytes, too short for the 8-byte header length", cut);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    buf[8] = '['; /* the JSON header no longer starts an object */
    write_bytes(cut, buf, n);
    CHECK(lt_optim_load(t, cut) == LT_ERR_FORMAT, "corrupt header accepted");
    snprintf(bad, sizeof bad, "%s: header is not a JSON object (it must start with '{')", cut);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    snprintf(cut, sizeof cut, "%s/does_not_exist.safetensors", lt_test_tmp_dir());
    CHECK(lt_optim_load(t, cut) == LT_ERR_IO, "missing file accepted");
    snprintf(bad, sizeof bad, "%s: cannot open: No such file or directory", cut);
    CHECK(!strcmp(lt_optim_error(t), bad), "\n  got:  %s\n  want: %s", lt_optim_error(t), bad);
    CHECK(lt_optim_param_step(t, 0) == 0, "a failed load changed the optimizer");
    lt_optim_free(t);
    lt_optim_free(src);
    return lt_test_done("test_optim_errors");
}
