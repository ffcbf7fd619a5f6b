/* The trainer's invariants below the command line: gradient accumulation (k
 * micro-batches of b, each scaled by 1/k, equal one batch of k*b to fp32
 * rounding) and the data order (a function of (seed, epoch) only: seeking to a
 * position gives the same batches as getting there). */
#include <math.h>

#include "model/gpt2.h"
#include "testutil.h"
#include "train/data.h"

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
    lt_data_close(&d1), lt_data_close(&d2);
    return lt_test_done("test_train");
}
