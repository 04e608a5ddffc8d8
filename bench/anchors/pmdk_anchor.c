/* pmdk_anchor -- the PMDK side of `daxfs bench pmem`: libpmem's pmem_memcpy_persist and pmem_persist measured on
 * an emulated-pmem file (run with PMEM_IS_PMEM_FORCE=1) with the same sizes, offsets and timing as the DaxFS side.
 * Built and run by the bench suite; prints "metric size value" lines.
 *
 * usage: pmdk_anchor PATH DEVICE_BYTES ITER_SCALE SEED [store_persist | existing]
 *
 * With "store_persist" (the anchor of `daxfs bench map`), it measures only a 64-byte store (memcpy) + pmem_persist
 * at random 64-byte aligned offsets, timed together in batches of 8, and reports how many bytes of its mapping the
 * kernel maps with 2 MiB pages (ShmemPmdMapped/FilePmdMapped in /proc/self/smaps); the same stores over DaxFS's
 * own mapping run inside the suite's process (pmdk_inproc.c). With "existing", the default measurements run over
 * an existing file mapped whole (DEVICE_BYTES is ignored): the volume `daxfs bench fs` has just measured DaxFS on,
 * so that both sides store into the same pages. (The copy-on-write floor `daxfs bench fs` compares its overwrite
 * with runs in its process too: pmdk_inproc.c.)
 */
#define _GNU_SOURCE
#include <emmintrin.h>
#include <libpmem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng;

/* xorshift64 -- the same generator as the C# side, so both pick the same offsets. */
static uint64_t next(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	return n % 2 ? (double)v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* iterations -- fewer for big sizes so every size takes a comparable time. */
static int iterations(size_t size, int scale)
{
	int n = size <= 4096 ? 20000 : size <= 65536 ? 4000 : 300;
	n = n * scale / 100;
	return n < 11 ? 11 : n;
}

/* pmd_mapped_bytes -- bytes of [base, base+len) the kernel maps with 2 MiB pages, from /proc/self/smaps. */
static unsigned long long pmd_mapped_bytes(const char *base, size_t len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (f == NULL)
		return 0;
	char line[512];
	int inside = 0;
	unsigned long long total = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi, kb;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			inside = lo >= (unsigned long)base && hi <= (unsigned long)(base + len);
			continue;
		}
		if (inside && (sscanf(line, "ShmemPmdMapped: %lu kB", &kb) == 1 || sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1))
			total += kb * 1024ull;
	}
	fclose(f);
	return total;
}

/* store_persist -- `daxfs bench map`'s anchor: a 64-byte store + pmem_persist at random offsets. */
static int store_persist(char *base, size_t mapped, int scale, uint64_t seed)
{
	char *src = aligned_alloc(64, 64);
	for (int i = 0; i < 64; i++)
		src[i] = (char)(i * 131 + 7);
	int k = 8, n = iterations(64, scale) / k;
	uint64_t *t = malloc(sizeof(uint64_t) * (size_t)n);
	size_t slots = (mapped - 64) / 64;
	char *dst[8];
	for (int pass = 0; pass < 2; pass++) { /* the first pass warms up (caches, TLB, branch predictors) */
		rng = seed + 64 + 2;
		for (int i = 0; i < n; i++) {
			for (int j = 0; j < k; j++)
				dst[j] = base + (next() % slots) * 64;
			uint64_t t0 = now_ns();
			for (int j = 0; j < k; j++) {
				memcpy(dst[j], src, 64);
				pmem_persist(dst[j], 64);
			}
			t[i] = now_ns() - t0;
		}
	}
	printf("store_persist_ns 64 %.1f\n", median(t, n) / k);
	printf("pmd_mapped_bytes 0 %llu\n", pmd_mapped_bytes(base, mapped));
	free(src);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	int existing = argc == 6 && strcmp(argv[5], "existing") == 0;
	if (argc != 5 && !(argc == 6 && strcmp(argv[5], "store_persist") == 0) && !existing) {
		fprintf(stderr, "usage: %s PATH DEVICE_BYTES ITER_SCALE SEED [store_persist | existing]\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	size_t devsize = strtoull(argv[2], NULL, 10);
	int scale = atoi(argv[3]);
	uint64_t seed = strtoull(argv[4], NULL, 10);
	size_t mapped;
	int is_pmem;
	/* "existing": the default measurements over a file that exists (a DaxFS volume the caller is done with), mapped
	 * whole, so that both sides store into the same pages; the caller removes it. */
	char *base = existing ? pmem_map_file(path, 0, 0, 0, &mapped, &is_pmem)
			      : pmem_map_file(path, devsize, PMEM_FILE_CREATE | PMEM_FILE_EXCL, 0600, &mapped, &is_pmem);
	if (base == NULL) {
		fprintf(stderr, "pmem_map_file %s: %s\n", path, pmem_errormsg());
		return 3;
	}
	if (!existing)
		unlink(path); /* the mapping keeps it alive; nothing is left behind on exit */
	if (!is_pmem) {
		fprintf(stderr, "%s is not pmem to libpmem: run with PMEM_IS_PMEM_FORCE=1\n", path);
		return 4;
	}
	pmem_memset_persist(base, 0, mapped); /* fault every page in, as the DaxFS side does */
	if (argc == 6 && !existing) {
		int rc = store_persist(base, mapped, scale, seed);
		pmem_unmap(base, mapped);
		return rc;
	}

	static const size_t sizes[] = { 64, 256, 4096, 65536, 2u << 20 };
	char *src = aligned_alloc(64, 2u << 20); /* cache-line aligned, as on the DaxFS side */
	uint64_t *t = malloc(sizeof(uint64_t) * 20000);
	for (size_t i = 0; i < (2u << 20); i++)
		src[i] = (char)(i * 131 + 7);

	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		size_t size = sizes[s];
		/* small operations are timed in batches of 8 (the clock costs about as much as they do) */
		int k = size <= 4096 ? 8 : 1;
		int n = iterations(size, scale) / k;
		size_t slots = (mapped - size) / 64;
		char *dst[8];
		rng = seed + size;
		for (int i = 0; i < n; i++) {
			for (int j = 0; j < k; j++)
				dst[j] = base + (next() % slots) * 64;
			uint64_t t0 = now_ns();
			for (int j = 0; j < k; j++)
				pmem_memcpy_persist(dst[j], src, size);
			t[i] = now_ns() - t0;
		}
		printf("memcpy_persist_ns %zu %.1f\n", size, median(t, n) / k);
		rng = seed + size + 1;
		for (int i = 0; i < n; i++) {
			for (int j = 0; j < k; j++) {
				dst[j] = base + (next() % slots) * 64;
				memcpy(dst[j], src, size); /* dirty the lines, untimed */
			}
			_mm_mfence(); /* the stores (and their cache misses) complete before the clock starts */
			uint64_t t0 = now_ns();
			for (int j = 0; j < k; j++)
				pmem_persist(dst[j], size);
			t[i] = now_ns() - t0;
		}
		printf("persist_ns %zu %.1f\n", size, median(t, n) / k);
	}

	/* streaming: the whole device written once in 1 MiB copies, best of three passes */
	double best = 0;
	for (int pass = 0; pass < 3; pass++) {
		uint64_t t0 = now_ns();
		for (size_t off = 0; off + (1u << 20) <= mapped; off += 1u << 20)
			pmem_memcpy_persist(base + off, src + (off & (1u << 20)), 1u << 20);
		double gibs = (double)(mapped & ~((size_t)(1u << 20) - 1)) / (double)(now_ns() - t0) * 1e9 / (1u << 30);
		if (gibs > best)
			best = gibs;
	}
	printf("stream_gibs 0 %.3f\n", best);

	/* a whole-device write-back after one dirty 4 KiB: what fsync costs without dirty tracking */
	rng = seed + 99;
	for (int i = 0; i < 5; i++) {
		char *dst = base + (next() % ((mapped - 4096) / 64)) * 64;
		memcpy(dst, src, 4096);
		_mm_mfence();
		uint64_t t0 = now_ns();
		pmem_persist(base, mapped);
		t[i] = now_ns() - t0;
	}
	printf("persist_device_ns 0 %.1f\n", median(t, 5));
	pmem_unmap(base, mapped);
	free(src);
	free(t);
	return 0;
}
