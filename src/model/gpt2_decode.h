/* GPT-2 inference one token at a time with a key / value cache (fp32, CPU): each new token's forward attends to
 * the keys and values of the tokens before it, kept from their own steps, so a sequence of n tokens costs n
 * one-row forwards instead of n forwards of up to n rows (what `leantrain generate` did before). The logits are
 * lt_gpt2_forward's for the same positions within fp32 rounding (one-row products sum in another order).
 *
 *   lt_gpt2_kv *kv;  lt_gpt2_kv_create(m, P, &kv, err, sizeof err);
 *   lt_gpt2_kv_prefill(m, kv, prompt, n, logits, err, sizeof err);          // the prompt in one forward
 *   for each token: lt_gpt2_kv_step(m, kv, token, logits, err, sizeof err);   // logits[V] of that position
 *   lt_gpt2_kv_reset(kv);   // a new sequence
 */
#ifndef LT_MODEL_GPT2_DECODE_H
#define LT_MODEL_GPT2_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "leantrain/status.h"
#include "model/gpt2.h"

typedef struct lt_gpt2_kv lt_gpt2_kv;

/* A cache for up to max_T positions (at most the model's n_positions) of model m, whose parameters must be fp32
 * (lt_gpt2_load's; not pure bf16). LT_ERR_ARG / LT_ERR_NOMEM with a message. */
lt_status lt_gpt2_kv_create(const lt_gpt2 *m, int max_T, lt_gpt2_kv **out, char *err, size_t errlen);

void lt_gpt2_kv_free(lt_gpt2_kv *kv);

/* Empties the cache: the next step is position 0. */
void lt_gpt2_kv_reset(lt_gpt2_kv *kv);

/* Tokens in the cache (the next step's position). */
int lt_gpt2_kv_len(const lt_gpt2_kv *kv);

/* An empty cache filled with tokens[n] at once: one lt_gpt2_forward of the n tokens (batched products: a prompt
 * costs one forward, not n steps), whose keys and values are copied into the cache; logits[V] (may be NULL) gets
 * the last position's. m must compute in fp32 without checkpointing (the forward keeps every layer's q | k | v)
 * with a batch capacity of at least n rows (lt_gpt2_set_batch), and n at most the cache's positions. Overwrites
 * m's activations. LT_ERR_ARG / LT_ERR_STATE with a message; the cache is then empty. */
lt_status lt_gpt2_kv_prefill(lt_gpt2 *m, lt_gpt2_kv *kv, const int32_t *tokens, int n, float *logits, char *err,
                             size_t errlen);

/* The forward of `token` at the next position: its keys and values join the cache, and logits[V] (may be NULL)
 * receives the position's logits. LT_ERR_ARG for a token outside the vocabulary, LT_ERR_STATE when the cache is
 * full; nothing changes then. */
lt_status lt_gpt2_kv_step(const lt_gpt2 *m, lt_gpt2_kv *kv, int32_t token, float *logits, char *err, size_t errlen);

#endif
