# leantrain build. `make` builds the library, the program, the example and the tests;
# `make test` runs the suite; `make test-asan` runs it under ASan+UBSan; `make run` runs the main job.
CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
OPT     ?= -O3
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off -Iinclude -Isrc $(shell pkg-config --cflags libcjson 2>/dev/null)
CFLAGS  ?= $(OPT) -g
LIBS    = -lopenblas -lcjson -lm -fopenmp

# layers, lowest first (design.md): util, io, kernels, optim, model, train; cli on top
LIB_SRC := $(wildcard src/io/*.c) $(wildcard src/kernels/*.c) $(wildcard src/kernels/cpu/*.c) $(wildcard src/optim/*.c) \
           $(wildcard src/util/*.c) $(wildcard src/model/*.c) $(wildcard src/train/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
EX_SRC  := $(wildcard examples/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/quant_maps.o
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EX_BIN  := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all deps test test-asan run install clean fuzz bench
all: $(BUILD)/libleantrain.a $(BUILD)/libleantrain.so $(BUILD)/leantrain $(EX_BIN) $(TEST_BIN)

$(BUILD)/obj/%.o: %.c $(wildcard include/leantrain/*.h) $(wildcard src/*/*.h) $(wildcard src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

# the quantization maps, generated from the shared table (never retyped)
$(BUILD)/gen/quant_maps.c: src/kernels/dynamic-maps.txt scripts/gen-qmaps.awk
	@mkdir -p $(dir $@)
	awk -f scripts/gen-qmaps.awk $< > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/quant_maps.o: $(BUILD)/gen/quant_maps.c src/kernels/quant.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

$(BUILD)/libleantrain.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libleantrain.so: $(LIB_OBJ)
	$(CC) -shared $(CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/leantrain: $(CLI_OBJ) $(BUILD)/libleantrain.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libleantrain.a $(LIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libleantrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libleantrain.a $(LIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libleantrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(BUILD)/libleantrain.a $(LIBS)

deps:
	@scripts/ensure-deps

test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/run-tests

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  LIBS="-lopenblas -lcjson -lm -fopenmp -fsanitize=address,undefined" all
	@BUILD=build-asan LT_TEST_QUICK=1 scripts/run-tests

# The main job: a small byte-level GPT-2 trained on a generated story corpus for about 2-3 minutes on the CPU,
# then a sample from its last checkpoint.
RUN_DIR   = $(BUILD)/run
RUN_STEPS = 200
run: deps
	@$(MAKE) --no-print-directory all $(BUILD)/data/stories.txt
	rm -rf $(RUN_DIR)
	$(BUILD)/leantrain train --train_file $(BUILD)/data/stories.txt --output_dir $(RUN_DIR) \
	  --n_layer 4 --n_embd 128 --n_head 4 --n_positions 128 --block_size 128 \
	  --per_device_train_batch_size 16 --max_steps $(RUN_STEPS) --learning_rate 2e-3 --warmup_steps 20 \
	  --lr_scheduler_type cosine --weight_decay 0.1 --optim adamw_torch_fused \
	  --logging_steps 20 --eval_steps 50 --eval_max_batches 16 --save_steps 100 --save_total_limit 2
	$(BUILD)/leantrain generate --model_name_or_path $(RUN_DIR)/checkpoint-$(RUN_STEPS) --prompt "Ada had a" \
	  --max_new_tokens 300 --temperature 0.8 --top_k 20 --seed 7

$(BUILD)/gen_corpus: scripts/gen_corpus.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -o $@ $<

$(BUILD)/data/stories.txt: $(BUILD)/gen_corpus
	@mkdir -p $(dir $@)
	$(BUILD)/gen_corpus $@

bench: all
	$(BUILD)/leantrain bench optim

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/leantrain $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/libleantrain.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libleantrain.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/leantrain/*.h $(DESTDIR)$(PREFIX)/include/leantrain/
	install -m 755 $(BUILD)/leantrain $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' leantrain.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/leantrain.pc

# libFuzzer target for the safetensors reader (needs clang).
fuzz: $(BUILD)/fuzz/fuzz_safetensors
$(BUILD)/fuzz/fuzz_safetensors: fuzz/fuzz_safetensors.c $(wildcard src/io/*.c) $(wildcard src/util/*.c)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc \
	  -o $@ $^ -lcjson -lm

clean:
	rm -rf build build-asan
