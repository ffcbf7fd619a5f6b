/* MT19937 and torch.randperm's shuffle (see mt19937.h). */
#include "util/mt19937.h"

enum { N = 624, M = 397 };

void lt_mt19937_seed(lt_mt19937 *m, uint64_t seed) {
    m->state[0] = (uint32_t)seed;
    for (uint32_t i = 1; i < N; i++)
        m->state[i] = 1812433253u * (m->state[i - 1] ^ (m->state[i - 1] >> 30)) + i;
    m->next = N;
}

uint32_t lt_mt19937_next(lt_mt19937 *m) {
    if (m->next >= N) { /* the whole state at once: word k from words k, k + 1 and k + M (mod N) */
        for (int k = 0; k < N; k++) {
            const uint32_t y = (m->state[k] & 0x80000000u) | (m->state[(k + 1) % N] & 0x7fffffffu);
            m->state[k] = m->state[(k + M) % N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->next = 0;
    }
    uint32_t y = m->state[m->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

void lt_randperm_torch(uint32_t *perm, size_t n, uint64_t seed) {
    lt_mt19937 m;
    lt_mt19937_seed(&m, seed);
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = 0; i + 1 < n; i++) {
        const size_t j = i + (size_t)lt_mt19937_next(&m) % (n - i);
        const uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
