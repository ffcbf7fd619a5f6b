/* leantrain (internal): the Mersenne Twister MT19937 (Matsumoto and Nishimura, 1998) as PyTorch's CPU generator
 * runs it, so that a shuffle can be torch.randperm's. */
#ifndef LT_UTIL_MT19937_H
#define LT_UTIL_MT19937_H

#include <stddef.h>
#include <stdint.h>

typedef struct lt_mt19937 {
    uint32_t state[624];
    int next; /* index of the next word to temper; 624: the state must be regenerated first */
} lt_mt19937;

/* Seeds as torch.Generator().manual_seed(seed) does: the standard initialization from the seed's low 32 bits. */
void lt_mt19937_seed(lt_mt19937 *m, uint64_t seed);

/* The next 32-bit output. */
uint32_t lt_mt19937_next(lt_mt19937 *m);

/* perm[0..n) = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) for n < 2^32: the identity, then
 * for i from 0 to n - 2 a swap of i with i + (next() mod (n - i)). */
void lt_randperm_torch(uint32_t *perm, size_t n, uint64_t seed);

#endif
