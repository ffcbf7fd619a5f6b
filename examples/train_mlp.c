/* Fits a two-layer MLP y = W2 tanh(W1 x + b1) to a fixed target function with
 * the leantrain optimizer library, the optimizer chosen by name:
 *     train_mlp [OPTIM [OPTIM_ARGS [LR]]]     e.g. train_mlp adafactor "" 1e-2 */
#include <leantrain/optim.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { IN = 8, HID = 32, N = 256, STEPS = 400 };
static float W1[HID * IN], b1[HID], W2[HID], dW1[HID * IN], db1[HID], dW2[HID], X[N * IN], Y[N];

static float forward_backward(void) { /* mean squared error and its gradients */
    float loss = 0, h[HID];
    for (int i = 0; i < HID * IN; i++) dW1[i] = 0;
    for (int j = 0; j < HID; j++) db1[j] = dW2[j] = 0;
    for (int n = 0; n < N; n++) {
        const float *x = X + n * IN;
        float y = 0;
        for (int j = 0; j < HID; j++) {
            float a = b1[j];
            for (int i = 0; i < IN; i++) a += W1[j * IN + i] * x[i];
            h[j] = tanhf(a);
            y += W2[j] * h[j];
        }
        float e = y - Y[n];
        loss += e * e / N;
        for (int j = 0; j < HID; j++) {
            float dh = 2 * e / N * W2[j] * (1 - h[j] * h[j]);
            dW2[j] += 2 * e / N * h[j];
            db1[j] += dh;
            for (int i = 0; i < IN; i++) dW1[j * IN + i] += dh * x[i];
        }
    }
    return loss;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "adamw_torch", *args = argc > 2 ? argv[2] : "";
    lt_hparams hp = lt_hparams_default();
    hp.lr = argc > 3 ? atof(argv[3]) : 1e-2;
    srand(1);
    for (int i = 0; i < N * IN; i++) X[i] = (float)rand() / (float)RAND_MAX * 2 - 1;
    for (int n = 0; n < N; n++) Y[n] = sinf(3 * X[n * IN]) * X[n * IN + 1] + 0.5f * X[n * IN + 2];
    for (int i = 0; i < HID * IN; i++) W1[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.7f;
    for (int j = 0; j < HID; j++) W2[j] = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.3f;
    char err[512];
    lt_optim *o = lt_optim_create(name, args, &hp, err, sizeof err);
    if (!o) {
        fprintf(stderr, "train_mlp: %s\n", err);
        return 1;
    }
    lt_param_desc ps[3] = {{.name = "W1", .data = W1, .grad = dW1, .ndim = 2, .shape = {HID, IN}},
                           {.name = "b1", .data = b1, .grad = db1, .ndim = 1, .shape = {HID}},
                           {.name = "W2", .data = W2, .grad = dW2, .ndim = 2, .shape = {1, HID}}};
    for (int k = 0; k < 3; k++)
        if (lt_optim_add_param(o, &ps[k]) < 0) {
            fprintf(stderr, "train_mlp: %s\n", lt_optim_error(o));
            return 1;
        }
    float first = forward_backward(), loss = first;
    for (int s = 1; s <= STEPS; s++) {
        if (lt_optim_step(o, 1.0f) != LT_OK) {
            fprintf(stderr, "train_mlp: %s\n", lt_optim_error(o));
            return 1;
        }
        loss = forward_backward();
        if (s % 100 == 0) printf("%s step %3d  loss %.5f\n", lt_optim_name(o), s, loss);
    }
    printf("%s: loss %.5f -> %.5f, optimizer state %zu bytes\n", lt_optim_name(o), first, loss,
           lt_optim_state_bytes(o));
    lt_optim_free(o);
    return loss < first ? 0 : 1;
}
