/* Writes the corpus `make run` trains on: short English-like stories from a
 * small grammar, drawn by a fixed-seed generator, so the repository needs no
 * download and every machine trains on the same text. Its structure (word
 * spelling, agreement, recurring names within a story) is what a small
 * byte-level GPT-2 learns, taking its loss well below the unigram entropy.
 * usage: gen_corpus OUT [BYTES (default 600000)] */
#include <stdio.h>
#include <stdlib.h>

static unsigned long long st = 20241127;
static unsigned rnd(unsigned n) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((st >> 33) % n);
}
#define PICK(a) a[rnd(sizeof a / sizeof a[0])]

static const char *NAMES[] = {"Ada", "Boris", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
                              "Kira", "Leo", "Mila", "Nils", "Olga", "Pavel"};
static const char *ANIMALS[] = {"fox", "owl", "cat", "horse", "robin", "bear", "otter", "goat", "crow", "hare"};
static const char *ANIMALS_PL[] = {"foxes", "owls", "cats", "horses", "robins", "bears", "otters", "goats", "crows",
                                   "hares"};
static const char *PLACES[] = {"the old mill", "the river", "the market", "the forest", "the library", "the harbour",
                               "the hill", "the bakery", "the station", "the garden"};
static const char *ADJ[] = {"small", "quiet", "bright", "clever", "tired", "brave", "curious", "gentle", "hungry",
                            "patient"};
static const char *VERBS[] = {"found", "followed", "watched", "helped", "carried", "painted", "counted", "called",
                              "visited", "remembered"};
static const char *THINGS[] = {"a red lantern", "three apples", "an old map", "a wooden box", "a blue kite",
                               "seven stones", "a silver key", "a letter", "a warm loaf", "a broken clock"};
static const char *TIMES[] = {"In the morning", "At noon", "Before dinner", "Late at night", "On Sunday",
                              "After the rain", "At dawn", "In winter"};
static const char *FEEL[] = {"happy", "worried", "surprised", "calm", "proud", "sleepy"};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: gen_corpus OUT [BYTES]\n");
        return 2;
    }
    long target = argc > 2 ? atol(argv[2]) : 600000;
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    long n = 0;
    while (n < target) {
        const char *who = PICK(NAMES), *pet = PICK(ANIMALS), *where = PICK(PLACES);
        n += fprintf(f, "%s had a %s %s.\n", who, PICK(ADJ), pet);
        int lines = 3 + (int)rnd(4);
        for (int i = 0; i < lines; i++) {
            switch (rnd(5)) {
            case 0: n += fprintf(f, "%s, %s went to %s.\n", PICK(TIMES), who, where); break;
            case 1: n += fprintf(f, "The %s %s %s near %s.\n", pet, PICK(VERBS), PICK(THINGS), where); break;
            case 2: n += fprintf(f, "%s %s the %s and felt %s.\n", who, PICK(VERBS), pet, PICK(FEEL)); break;
            case 3: n += fprintf(f, "There were %u %s at %s.\n", 2 + rnd(9), PICK(ANIMALS_PL), where); break;
            default: n += fprintf(f, "\"Look,\" said %s, \"the %s is %s today.\"\n", who, pet, PICK(ADJ)); break;
            }
        }
        n += fprintf(f, "So %s and the %s went home.\n\n", who, pet);
    }
    if (fclose(f)) {
        perror(argv[1]);
        return 1;
    }
    return 0;
}
