/* kernel_fs_anchor -- the kernel side of `daxfs bench fs`: the same operations through the kernel on a tmpfs
 * directory (which makes nothing durable), timed the same way as the DaxFS side. Prints "metric value" lines.
 *
 * usage: kernel_fs_anchor DIR ITER_SCALE SEED
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng;
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

static void die(const char *what)
{
	perror(what);
	exit(3);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR ITER_SCALE SEED\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	int scale = atoi(argv[2]);
	rng = strtoull(argv[3], NULL, 10) | 1;
	int n = 10000 * scale / 100;
	if (n < 11)
		n = 11;
	uint64_t *t = malloc(sizeof(uint64_t) * (size_t)n);
	char *buf = aligned_alloc(4096, 1u << 20);
	memset(buf, 0x5a, 1u << 20);
	char path[4096], path2[4096];

	/* 4 KiB overwrite + fdatasync at random block offsets of a 64 MiB file */
	snprintf(path, sizeof path, "%s/overwrite", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open overwrite");
	for (long off = 0; off < (64l << 20); off += 1 << 20)
		if (pwrite(fd, buf, 1 << 20, off) != 1 << 20)
			die("pwrite");
	for (int i = 0; i < n; i++) {
		off_t off = (off_t)(next() % (16384)) * 4096;
		uint64_t t0 = now_ns();
		if (pwrite(fd, buf, 4096, off) != 4096 || fdatasync(fd) != 0)
			die("overwrite");
		t[i] = now_ns() - t0;
	}
	printf("overwrite_ns %.1f\n", median(t, n));
	close(fd);
	unlink(path);

	/* 4 KiB append + fdatasync */
	snprintf(path, sizeof path, "%s/append", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (fd < 0)
		die("open append");
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		if (write(fd, buf, 4096) != 4096 || fdatasync(fd) != 0)
			die("append");
		t[i] = now_ns() - t0;
	}
	printf("append_ns %.1f\n", median(t, n));
	close(fd);
	unlink(path);

	/* create (empty file), then unlink, in one directory */
	snprintf(path, sizeof path, "%s/d", dir);
	mkdir(path, 0755);
	for (int i = 0; i < n; i++) {
		snprintf(path2, sizeof path2, "%s/d/f%d", dir, i);
		uint64_t t0 = now_ns();
		int f = open(path2, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (f < 0 || close(f) != 0)
			die("create");
		t[i] = now_ns() - t0;
	}
	printf("create_ns %.1f\n", median(t, n));
	for (int i = 0; i < n; i++) {
		snprintf(path2, sizeof path2, "%s/d/f%d", dir, i);
		uint64_t t0 = now_ns();
		if (unlink(path2) != 0)
			die("unlink");
		t[i] = now_ns() - t0;
	}
	printf("unlink_ns %.1f\n", median(t, n));

	/* rename back and forth in one directory */
	snprintf(path, sizeof path, "%s/d/a", dir);
	snprintf(path2, sizeof path2, "%s/d/b", dir);
	close(open(path, O_CREAT | O_WRONLY, 0644));
	for (int i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		if (rename(i % 2 ? path2 : path, i % 2 ? path : path2) != 0)
			die("rename");
		t[i] = now_ns() - t0;
	}
	printf("rename_ns %.1f\n", median(t, n));
	unlink(path);
	unlink(path2);
	snprintf(path, sizeof path, "%s/d", dir);
	rmdir(path);

	/* 1 GiB sequential write in 1 MiB writes, then fdatasync */
	snprintf(path, sizeof path, "%s/seq", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open seq");
	long total = (1l << 30) * scale / 100;
	if (total < (16l << 20))
		total = 16l << 20;
	uint64_t t0 = now_ns();
	for (long off = 0; off < total; off += 1 << 20)
		if (pwrite(fd, buf, 1 << 20, off) != 1 << 20)
			die("seq");
	if (fdatasync(fd) != 0)
		die("fdatasync");
	printf("seq_gibs %.3f\n", (double)total / (double)(now_ns() - t0) * 1e9 / (1u << 30));
	close(fd);
	unlink(path);
	return 0;
}
