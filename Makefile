# leantrain build. `make` builds the library, the program, the example and the tests;
# `make test` runs the suite; `make test-asan` runs it under ASan+UBSan; `make run` runs the main job.
CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
OPT     ?= -O3
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off -Iinclude -Isrc $(shell pkg-config --cflags libcjson 2>/dev/null)
CFLAGS  ?= $(OPT) -g
# OpenBLAS's OpenMP build (Debian's libopenblas-openmp-dev, which scripts/ensure-deps installs): its threads are
# the program's own OpenMP threads. The pthread build (Debian's default libopenblas) keeps a second pool of threads
# that spin for the cores while OpenMP's do, and the reverse: 1.5-2x slower training on 2 cores. Used when present
# (also under LT_DEPS_ROOT), else the default -lopenblas.
BLAS_DIR := $(firstword $(wildcard $(if $(LT_DEPS_ROOT),$(LT_DEPS_ROOT)/usr/lib/*-linux-gnu/openblas-openmp) \
                                   /usr/lib/*-linux-gnu/openblas-openmp))
ifneq ($(BLAS_DIR),)
BLAS_LIBS := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas
BLAS_INC  := $(subst /usr/lib/,/usr/include/,$(BLAS_DIR))
CFLAGS_BASE += -I$(BLAS_INC)
else
BLAS_LIBS := -lopenblas
endif
# oneDNN (Debian's libdnnl-dev, which scripts/ensure-deps installs): the CPU's bf16 products run on its bf16
# dot-product instructions (AVX512-BF16, AMX) where the CPU has them (src/model/gemm_bf16.c, which opens the library
# when a bf16 run first needs it: nothing is linked). Built in when its header is present (also under LT_DEPS_ROOT)
# and LT_DNNL is not 0; without it bf16 products are sgemms of bf16 values.
LT_DNNL ?= 1
DNNL_H := $(if $(filter-out 0,$(LT_DNNL)),$(firstword $(wildcard $(if $(LT_DEPS_ROOT),$(LT_DEPS_ROOT)/usr/include/oneapi/dnnl/dnnl.h) \
                                                         /usr/include/oneapi/dnnl/dnnl.h)))
ifneq ($(DNNL_H),)
CFLAGS_BASE += -DLT_HAVE_DNNL
else ifneq ($(LT_DNNL),0)
ifeq ($(MAKELEVEL),0)
$(info leantrain: oneDNN not found (apt-get install libdnnl-dev): bf16 products on the CPU by sgemm)
endif
endif
LIBS    = $(BLAS_LIBS) -lcjson -lpcre2-8 -lm -fopenmp

# LT_DEPS_ROOT=DIR: headers and libraries unpacked from Debian packages into DIR (dpkg -x), found by rpath
ifneq ($(LT_DEPS_ROOT),)
DEPS_LIBDIRS := $(LT_DEPS_ROOT)/usr/lib/x86_64-linux-gnu $(LT_DEPS_ROOT)/usr/lib/x86_64-linux-gnu/openblas-pthread
CFLAGS_BASE += -I$(LT_DEPS_ROOT)/usr/include -I$(LT_DEPS_ROOT)/usr/include/x86_64-linux-gnu \
               -I$(LT_DEPS_ROOT)/usr/include/x86_64-linux-gnu/openblas-pthread
DEPS_LDFLAGS := $(foreach d,$(DEPS_LIBDIRS),-L$(d) -Wl,-rpath,$(d) -Wl,-rpath-link,$(d)) -Wl,--disable-new-dtags
endif

# CUDA: src/kernels/cuda/*.cu go into the same library when nvcc is on PATH and LT_CUDA is not 0
LT_CUDA ?= 1
NVCC    ?= nvcc
NVCC_PATH := $(if $(filter-out 0,$(LT_CUDA)),$(shell command -v $(NVCC) 2>/dev/null))
ifneq ($(NVCC_PATH),)
CUDA_HOME   := $(patsubst %/bin/,%,$(dir $(realpath $(NVCC_PATH))))
CUDA_LIBDIR := $(patsubst %/,%,$(dir $(firstword $(wildcard $(CUDA_HOME)/lib64/libcudart.so $(CUDA_HOME)/targets/x86_64-linux/lib/libcudart.so))))
CUDA_LIBS   := -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcudart -lstdc++
NVCCFLAGS ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
             -gencode arch=compute_90,code=compute_90 -Xcompiler -fPIC -O3
# The optimizer kernels repeat the CPU's arithmetic operation for operation, and some model kernels must give the
# bits of others (the fused classifier those of the separate passes), so nvcc may not fuse a multiply and an add;
# the attention kernels are held to tolerances against the CPU and their dot products run on fused multiply-adds
# (the fp32 attention's arithmetic is most of its time)
NVCC_FMAD = $(if $(findstring src/model/cuda/attention,$<),-fmad=true,-fmad=false)
NVCC_BASE := -std=c++17 --threads 3 -Xcompiler -Wall,-Wextra -Iinclude -Isrc -DLT_HAVE_CUDA
CFLAGS_BASE += -DLT_HAVE_CUDA
CU_SRC  := $(wildcard src/kernels/cuda/*.cu) $(wildcard src/model/cuda/*.cu)
GPU_TEST_BIN := $(patsubst tests/gpu/%.c,$(BUILD)/tests/gpu/%,$(wildcard tests/gpu/*.c))
else ifneq ($(LT_CUDA),0)
ifeq ($(MAKELEVEL),0)
$(info leantrain: nvcc not found, building CPU-only (no CUDA kernels))
endif
endif
LT_LDLIBS = $(DEPS_LDFLAGS) $(CUDA_LIBS)

# layers, lowest first (design.md): util, io, kernels, optim, model, tokenizer, train; cli on top
LIB_SRC := $(wildcard src/io/*.c) $(wildcard src/kernels/*.c) $(wildcard src/kernels/cpu/*.c) $(wildcard src/optim/*.c) \
           $(wildcard src/util/*.c) $(wildcard src/model/*.c) $(wildcard src/tokenizer/*.c) $(wildcard src/train/*.c)
CLI_SRC := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
EX_SRC  := $(wildcard examples/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/quant_maps.o $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EX_BIN  := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
# the fuzz targets with fuzz/replay.c in libFuzzer's place (gcc, no instrumentation): tests/cli/fuzz_seeds.sh replays
# the committed corpora through them (fuzz_tokenize has no corpus)
FUZZ_REPLAY_BIN := $(patsubst %,$(BUILD)/fuzz-replay/%,fuzz_args fuzz_optim_state fuzz_safetensors fuzz_tokenizer_files)

.PHONY: all deps test test-asan run install clean fuzz bench bench-ceiling bench-scaling cuda-emu cuda-emu-race
all: $(BUILD)/libleantrain.a $(BUILD)/libleantrain.so $(BUILD)/leantrain $(EX_BIN) $(TEST_BIN) $(GPU_TEST_BIN) \
     $(FUZZ_REPLAY_BIN)

$(BUILD)/obj/%.o: %.c $(wildcard include/leantrain/*.h) $(wildcard src/*/*.h) $(wildcard src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c $< -o $@

# every header a .cu may reach (gpt2_device.h includes model/gpt2.h, whose struct layout the device code reads)
CU_HDR  := $(wildcard include/leantrain/*.h) $(wildcard src/*/*.h) $(wildcard src/*/*/*.h) $(wildcard src/*/*/*.cuh)
$(BUILD)/obj/%.o: %.cu $(CU_HDR) include/leantrain/dtype.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_BASE) $(NVCCFLAGS) $(NVCC_FMAD) -c $< -o $@

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
	$(CC) -shared $(CFLAGS) -o $@ $^ $(LIBS) $(LT_LDLIBS)

$(BUILD)/leantrain: $(CLI_OBJ) $(BUILD)/libleantrain.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libleantrain.a $(LIBS) $(LT_LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libleantrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libleantrain.a $(LIBS) $(LT_LDLIBS)

$(BUILD)/fuzz-replay/%: fuzz/%.c fuzz/replay.c fuzz/fuzz.h $(BUILD)/libleantrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< fuzz/replay.c $(BUILD)/libleantrain.a $(LIBS) $(LT_LDLIBS)

# tests/gpu (CUDA builds only; not run by `make test`): gpu_lowbit is tests/test_lowbit.c on the GPU
$(BUILD)/tests/gpu/gpu_lowbit: tests/test_lowbit.c
$(BUILD)/tests/gpu/gpu_compare: tests/optim_cases.h

$(BUILD)/examples/%: examples/%.c $(BUILD)/libleantrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(BUILD)/libleantrain.a $(LIBS) $(LT_LDLIBS)

# `make cuda-emu`: the CUDA backend's sources run on the CPU (tests/emu: an emulation of the CUDA runtime and thread
# model, asynchronous: a stream's work runs when the host waits for it; no GPU or nvcc needed) under
# AddressSanitizer + UBSan: the traces replayed with --device cuda, the GPU
# benchmark's code path, gpu_compare --quick (and its Adafactor configurations three times more: with
# LT_ADAFACTOR_PIPE=0, the row pass without cp.async staging, with =1b, the one with one barrier a group of rows, and on an emulated device that allows a block 99 KB of shared memory
# like an RTX 4090, LT_EMU_SMEM_OPTIN=101376), the GPT-2 layer kernels against the CPU's, the whole GPT-2 model on
# the device against the CPU model (gpu_gpt2_model --quick), a GPU older than compute capability 8.0 refused
# (tests/gpu/old_gpu.sh), and the trainer's memory check and --auto_find_batch_size against an emulated device of
# a few MiB (tests/gpu/device_memory.sh) (about 10 minutes on 2 cores);
# EMU_FULL=1 adds the bf16 and API checks, gpu_lowbit, and the trainer on the emulated device: gpu-check's
# training checks (scripts/gpu-train-check compare, gpt2 and gpt2-7b) in their small mode (about 30 minutes more).
# Timings are meaningless there. gpu_gpt2_model's CPU reference multiplies by OpenBLAS sgemm (LT_CPU_BF16_GEMM=0):
# with oneDNN's bf16 path beside the emulator's threads, LeakSanitizer's tracer crashed at exit after every check
# had passed (found 2026-11-30; `make test-asan` covers the oneDNN path).
EMU      := $(BUILD)/emu
EMU_SAN  := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
EMU_SRC  := $(LIB_SRC)
EMU_OBJ  := $(EMU_SRC:%.c=$(EMU)/obj/%.o) $(EMU)/obj/gen/quant_maps.o \
            $(patsubst %.cu,$(EMU)/obj/%.o,$(wildcard src/kernels/cuda/*.cu) $(wildcard src/model/cuda/*.cu))
$(EMU)/obj/%.o: %.c $(wildcard include/leantrain/*.h) $(wildcard src/*/*.h) $(wildcard src/*/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -DLT_HAVE_CUDA $(EMU_SAN) -c $< -o $@
$(EMU)/obj/gen/quant_maps.o: $(BUILD)/gen/quant_maps.c src/kernels/quant.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(EMU_SAN) -c $< -o $@
$(EMU)/obj/%.o: %.cu $(CU_HDR) $(wildcard tests/emu/*.h)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++20 -x c++ -DLT_CUDA_EMU -DLT_HAVE_CUDA -Itests/emu -Iinclude -Isrc -Wall -Wextra -Wno-unknown-pragmas -Wno-unused-parameter $(EMU_SAN) -pthread -c $< -o $@
$(EMU)/libleantrain.a: $(EMU_OBJ)
	rm -f $@ && ar rcs $@ $^
$(EMU)/tests/gpu/%: tests/gpu/%.c tests/testutil.h tests/test_lowbit.c tests/optim_cases.h $(EMU)/libleantrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -DLT_HAVE_CUDA $(EMU_SAN) -Itests -o $@ $< $(EMU)/libleantrain.a $(LIBS) -lstdc++ -pthread $(EMU_SAN)
$(EMU)/leantrain: $(CLI_SRC:%.c=$(EMU)/obj/%.o) $(EMU)/libleantrain.a
	$(CC) -o $@ $^ $(LIBS) -lstdc++ -pthread $(EMU_SAN)
cuda-emu: $(EMU)/tests/gpu/gpu_compare $(EMU)/tests/gpu/gpu_lowbit $(EMU)/tests/gpu/gpu_gpt2_layers \
          $(EMU)/tests/gpu/gpu_gpt2_model $(EMU)/leantrain
	@mkdir -p $(BUILD)/tmp
	$(EMU)/leantrain replay --device cuda $$(grep -l -e optim-trace-1 -e gpt2-trace-1 tests/data/golden/*.safetensors) \
	  tests/data/torch2/*.safetensors tests/data/lowbit/*.safetensors tests/data/gpt2/*.safetensors
	$(EMU)/leantrain replay --device cuda --bf16 tests/data/golden/gpt2_tiny.safetensors
	$(EMU)/leantrain bench optim --device cuda --optim adamw_torch --params 0.5 --steps 2
	LT_TEST_TMP=$(BUILD)/tmp $(EMU)/tests/gpu/gpu_compare $(if $(EMU_FULL),,--quick)
	LT_ADAFACTOR_PIPE=0 LT_TEST_TMP=$(BUILD)/tmp $(EMU)/tests/gpu/gpu_compare --quick --only adafactor
	LT_ADAFACTOR_PIPE=1b LT_TEST_TMP=$(BUILD)/tmp $(EMU)/tests/gpu/gpu_compare --quick --only adafactor
	LT_EMU_SMEM_OPTIN=101376 LT_TEST_TMP=$(BUILD)/tmp $(EMU)/tests/gpu/gpu_compare --quick --only adafactor
	$(EMU)/tests/gpu/gpu_gpt2_layers
	LT_CPU_BF16_GEMM=0 $(EMU)/tests/gpu/gpu_gpt2_model $(if $(EMU_FULL),,--quick)
	LT_TEST_TMP=$(BUILD)/tmp tests/gpu/old_gpu.sh $(EMU)/leantrain
	LT_TEST_TMP=$(BUILD)/tmp tests/gpu/device_memory.sh $(EMU)/leantrain
	LT_TEST_TMP=$(BUILD)/tmp tests/gpu/kernel_forms.sh $(EMU)/leantrain
	$(if $(EMU_FULL),LT_TEST_TMP=$(BUILD)/tmp LT_TEST_QUICK=1 $(EMU)/tests/gpu/gpu_lowbit)
	$(if $(EMU_FULL),GPU_TRAIN_CHECK_SMALL=1 scripts/gpu-train-check compare $(abspath $(EMU)/leantrain) \
	  $(BUILD)/tmp/train-check)
	$(if $(EMU_FULL),GPU_TRAIN_CHECK_SMALL=1 GPT2_RUN_TIMEOUT=600 GPT2_7B_TIMEOUT=600 \
	  scripts/gpu-train-check gpt2 $(abspath $(EMU)/leantrain) $(BUILD)/tmp/train-check)
	$(if $(EMU_FULL),GPU_TRAIN_CHECK_SMALL=1 GPT2_RUN_TIMEOUT=600 GPT2_7B_TIMEOUT=600 \
	  scripts/gpu-train-check gpt2-7b $(abspath $(EMU)/leantrain) $(BUILD)/tmp/train-check)

# `make cuda-emu-race`: the races between threads of a block, made deterministic. The emulation runs a block's
# threads one at a time between barriers (LT_EMU_SCHED=forward, then reverse) and performs each cp.async copy
# at its issue (LT_EMU_CP=issue), so a read of shared memory another thread writes with no barrier between, or
# a copy into a buffer other warps still read, gives wrong numbers every run in one of the two orders; threads
# at different barriers are reported. gpu_compare (every kernel of the optimizers), the layer kernels and the
# model, both orders (about an hour on 2 cores). Then the optimizers' kernels and the layer kernels once more a
# warp at a time (LT_EMU_SCHED=warps, warps-reverse: a warp runs from one __syncthreads to the next before the
# next warp starts, which catches a shared buffer that one warp refills while another has yet to read it;
# roughly an hour more per order on 2 cores).
cuda-emu-race: $(EMU)/tests/gpu/gpu_compare $(EMU)/tests/gpu/gpu_gpt2_layers $(EMU)/tests/gpu/gpu_gpt2_model
	@mkdir -p $(BUILD)/tmp
	set -e; for order in forward reverse; do \
	  echo "== LT_EMU_SCHED=$$order LT_EMU_CP=issue"; \
	  LT_EMU_SCHED=$$order LT_EMU_CP=issue LT_TEST_TMP=$(BUILD)/tmp $(EMU)/tests/gpu/gpu_compare --quick; \
	  LT_EMU_SCHED=$$order LT_EMU_CP=issue $(EMU)/tests/gpu/gpu_gpt2_layers; \
	  LT_CPU_BF16_GEMM=0 LT_EMU_SCHED=$$order LT_EMU_CP=issue $(EMU)/tests/gpu/gpu_gpt2_model --quick; \
	done; \
	for order in warps warps-reverse; do \
	  echo "== LT_EMU_SCHED=$$order LT_EMU_CP=issue"; \
	  LT_EMU_SCHED=$$order LT_EMU_CP=issue LT_TEST_TMP=$(BUILD)/tmp $(EMU)/tests/gpu/gpu_compare --quick; \
	  LT_EMU_SCHED=$$order LT_EMU_CP=issue $(EMU)/tests/gpu/gpu_gpt2_layers; \
	done

deps:
	@scripts/ensure-deps

test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/run-tests

# float-cast-overflow: a double or float converted to an integer type it does not fit (gcc leaves it out of
# -fsanitize=undefined; clang, which the fuzzers use, has it in)
ASAN_SAN = address,undefined,float-cast-overflow
# LeakSanitizer (gcc 12) crashes at exit on the dynamic TLS of a library opened with dlopen (oneDNN, for bf16 products:
# "Tracer caught signal 11" reading its DTLS blocks): the sanitized runs do not track those blocks. No leak report is
# lost to it here (with the tracking and TLS scanning off instead, LSan reports only oneDNN's own TLS-held blocks).
SAN_RUN_OPTIONS = $(ASAN_OPTIONS)$(if $(ASAN_OPTIONS),:)intercept_tls_get_addr=0
test-asan cuda-emu cuda-emu-race: export ASAN_OPTIONS := $(SAN_RUN_OPTIONS)
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  CFLAGS="-O1 -g -fsanitize=$(ASAN_SAN) -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer" \
	  LIBS="$(BLAS_LIBS) -lcjson -lpcre2-8 -lm -fopenmp -fsanitize=$(ASAN_SAN)" all
	@BUILD=build-asan LT_TEST_QUICK=1 scripts/run-tests

# The main job: a small byte-level GPT-2 trained on a generated story corpus for about 1.5 minutes on the CPU
# (2 cores), then a sample from its last checkpoint.
RUN_DIR   = $(BUILD)/run
RUN_STEPS = 600
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

bench: all $(BUILD)/bench/stream_ceiling
	$(BUILD)/bench/stream_ceiling
	$(BUILD)/leantrain bench optim

# the memory system's ceilings for bench optim's ratios (bench/stream_ceiling.c)
bench-ceiling: $(BUILD)/bench/stream_ceiling
	$(BUILD)/bench/stream_ceiling
$(BUILD)/bench/stream_ceiling: bench/stream_ceiling.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< -fopenmp

# how an optimizer step scales with threads from L2, L3 and DRAM (bench/optim_scaling.c); OPTIM="a b" to choose
bench-scaling: $(BUILD)/bench/optim_scaling
	$(BUILD)/bench/optim_scaling $(OPTIM)
$(BUILD)/bench/optim_scaling: bench/optim_scaling.c $(BUILD)/libleantrain.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(BUILD)/libleantrain.a $(LIBS) $(LT_LDLIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/leantrain $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(BUILD)/libleantrain.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libleantrain.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/leantrain/*.h $(DESTDIR)$(PREFIX)/include/leantrain/
	install -m 755 $(BUILD)/leantrain $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@CUDA_LIBS@|$(CUDA_LIBS)|' -e 's|@BLAS_LIBS@|$(BLAS_LIBS)|' leantrain.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/leantrain.pc
	install -d $(DESTDIR)$(PREFIX)/share/leantrain/gpt2
	install -m 644 data/gpt2/* $(DESTDIR)$(PREFIX)/share/leantrain/gpt2/

# libFuzzer targets (need clang): the safetensors reader, the GPT-2 encoder, the tokenizer file readers, the
# optimizer state loader, the flags and config files a user writes (fuzz/README.md).
FUZZ_CC = clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc
FUZZ_TOK_SRC = $(wildcard src/tokenizer/*.c) $(wildcard src/io/*.c) $(wildcard src/util/*.c)
FUZZ_OPT_SRC = $(wildcard src/optim/*.c) $(wildcard src/kernels/*.c) $(wildcard src/kernels/cpu/*.c) $(wildcard src/io/*.c) \
               $(wildcard src/util/*.c) $(BUILD)/gen/quant_maps.c
FUZZ_ARGS_SRC = $(LIB_SRC) $(BUILD)/gen/quant_maps.c
fuzz: $(BUILD)/fuzz/fuzz_safetensors $(BUILD)/fuzz/fuzz_tokenize $(BUILD)/fuzz/fuzz_tokenizer_files $(BUILD)/fuzz/fuzz_optim_state \
      $(BUILD)/fuzz/fuzz_args
$(BUILD)/fuzz/fuzz_safetensors: fuzz/fuzz_safetensors.c $(wildcard src/io/*.c) $(wildcard src/util/*.c)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -o $@ $^ -lcjson -lm
$(BUILD)/fuzz/fuzz_tokenize $(BUILD)/fuzz/fuzz_tokenizer_files: $(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_TOK_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -fopenmp -o $@ $^ -lcjson -lpcre2-8 -lm
$(BUILD)/fuzz/fuzz_optim_state: fuzz/fuzz_optim_state.c $(FUZZ_OPT_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off -o $@ $^ -lcjson -lm
$(BUILD)/fuzz/fuzz_args: fuzz/fuzz_args.c $(FUZZ_ARGS_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter -I%,$(CFLAGS_BASE)) -fopenmp -fno-math-errno -fno-trapping-math -ffp-contract=off -o $@ $^ \
	  $(BLAS_LIBS) -lcjson -lpcre2-8 -lm

clean:
	rm -rf build build-asan
