/* Choosing the next token from a language model's logits as transformers' generate() does: its logits
 * processors, in its order (the repetition penalty; with sampling, then temperature, top-k and top-p), and the
 * choice (the first largest score, or a draw from the softmax of the processed scores). The draw's random number
 * comes from the caller, so the choice is a pure function of the scores and that number (torch's multinomial draws
 * other numbers: a sampled text matches generate()'s in distribution, a greedy one token for token). */
#ifndef LT_MODEL_SAMPLE_H
#define LT_MODEL_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lt_sample_params {
    int do_sample;             /* 0: greedy (GenerationConfig's default); 1: draw from the processed scores */
    double temperature;        /* > 0; 1: none (used only when sampling) */
    int top_k;                 /* keep the scores at or above the k-th largest; 0: none (sampling only) */
    double top_p;              /* keep the smallest set of largest scores whose probability passes top_p; 1: none */
    double repetition_penalty; /* > 0; 1: none. Each id in the history: a score s < 0 times it, else divided */
} lt_sample_params;

/* transformers 5's defaults: greedy, temperature 1, top_k 50, top_p 1, repetition_penalty 1. */
lt_sample_params lt_sample_defaults(void);

/* Checks the parameters; 0, or -1 with a message naming the flag (--temperature ...) in err. */
int lt_sample_check(const lt_sample_params *p, char *err, size_t errlen);

/* scores[V] processed in place, as generate()'s processors would: the repetition penalty over the ids in
 * history[n] (each id once, however often it occurs; ids outside [0, V) ignored); when p->do_sample, then the
 * scores divided by the temperature (in float), top-k (transformers' TopKLogitsWarper: every score below the k-th
 * largest removed, ties at it kept) and top-p (TopPLogitsWarper: in ascending order of score, the scores whose
 * softmax's running sum stays at or below 1 - top_p removed, the largest always kept). A removed score becomes
 * -infinity. scratch: V ints. */
void lt_sample_process(float *scores, int V, const lt_sample_params *p, const int32_t *history, size_t n,
                       int *scratch);

/* The token chosen from processed scores[V]: greedy, the first index of the largest score; sampling, the first
 * token (in index order) where the running sum of exp(score - max) passes u x their total (u in [0, 1)). */
int lt_sample_pick(const float *scores, int V, int do_sample, double u);

#endif
