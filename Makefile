# vmi.h - build, test, bench. `make help` lists the targets.
CC      ?= cc
BUILD   ?= build
WARN    = -Wall -Wextra -Wpedantic -Werror -Wshadow
CWARN   = $(WARN) -Wstrict-prototypes
SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
HEADERS = vmi.h vmi_file.h vmi_kvm.h vmi_xen.h
UNITS   = test_paging test_mem test_cache test_file test_types test_kallsyms test_dmesg test_kvm test_events
FUZZ_SECONDS ?= 30

.PHONY: all help test test-quick bench fuzz demo clean

all: $(BUILD)/vmi

help:
	@echo "make            build/vmi, the command-line tool (static where possible)"
	@echo "make test       everything: compile matrix, unit tests (plain and ASan+UBSan),"
	@echo "                the CLI tests, fuzz smoke run, real-guest tests (boots QEMU)"
	@echo "make test-quick the same without guests and fuzzing"
	@echo "make bench      timings beside memcpy measured in the same run"
	@echo "make fuzz       libFuzzer harnesses, FUZZ_SECONDS each (default 30)"
	@echo "make demo       boot the x86_64 lab guest and run the vmi tool on it"

$(BUILD):
	@mkdir -p $(BUILD)

# Static where the toolchain allows, dynamic otherwise.
$(BUILD)/vmi: examples/vmi.c $(HEADERS) | $(BUILD)
	$(CC) -std=c99 -O2 $(CWARN) -I. examples/vmi.c -o $@ -static 2>/dev/null || \
	$(CC) -std=c99 -O2 $(CWARN) -I. examples/vmi.c -o $@

$(BUILD)/unit/%: tests/unit/%.c tests/unit/test.h tests/unit/live_guest.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O1 -g $(CWARN) -I. $< -o $@

$(BUILD)/unit-san/%: tests/unit/%.c tests/unit/test.h tests/unit/live_guest.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -O1 -g $(CWARN) $(SAN) -I. $< -o $@

$(BUILD)/bench: bench/bench.c $(HEADERS) | $(BUILD)
	$(CC) -std=c99 -O2 -march=native $(CWARN) -I. bench/bench.c -o $@

$(BUILD)/mkimage: tests/cli/mkimage.c $(HEADERS) | $(BUILD)
	$(CC) -std=c99 -O1 -g $(CWARN) -I. $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	clang -std=c99 -O1 -g $(CWARN) -fsanitize=fuzzer,address,undefined -I. $< -o $@

test: all $(addprefix $(BUILD)/unit/,$(UNITS)) $(addprefix $(BUILD)/unit-san/,$(UNITS)) \
      $(BUILD)/mkimage $(BUILD)/fuzz/fuzz_file $(BUILD)/fuzz/fuzz_paging $(BUILD)/fuzz/fuzz_types
	sh tests/run.sh all

test-quick: all $(addprefix $(BUILD)/unit/,$(UNITS)) $(addprefix $(BUILD)/unit-san/,$(UNITS)) $(BUILD)/mkimage
	sh tests/run.sh quick

# With a lab capture present, also times a real guest's ELF core.
bench: $(BUILD)/bench
	$(BUILD)/bench $(wildcard $(BUILD)/guests/x86_64/mem.elf)
	python3 bench/live.py $(BUILD)/bench

fuzz: $(BUILD)/fuzz/fuzz_file $(BUILD)/fuzz/fuzz_paging $(BUILD)/fuzz/fuzz_types
	sh tests/fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

demo: all
	python3 tests/guests/demo.py $(BUILD)/vmi

clean:
	rm -rf $(BUILD)
