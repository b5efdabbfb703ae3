/* BLAKE3: the official test vectors, and every SIMD path, split and thread count agreeing. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap/snap.h"
#include "tests/harness.h"

/*
 * Facts from the BLAKE3 team's test_vectors/test_vectors.json: input byte i
 * is i % 251; keyed_hash uses the key below, derive_key the context below.
 */
static const char vec_key[] = "whats the Elvish word for friend";
static const char vec_context[] = "BLAKE3 2019-12-27 16:29:52 test vectors context";
enum { MODE_HASH, MODE_KEYED, MODE_DERIVE };

/* hash mode, first 32 bytes, for every input length of the official vectors */
static const struct { size_t len; const char *hex; } hash32[] = {
	{ 0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" },
	{ 1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213" },
	{ 1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11" },
	{ 1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7" },
	{ 1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444" },
	{ 2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a" },
	{ 2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030" },
	{ 3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2" },
	{ 3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3" },
	{ 4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969" },
	{ 4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995" },
	{ 5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833" },
	{ 5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff" },
	{ 6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205" },
	{ 6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f" },
	{ 7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a" },
	{ 7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817" },
	{ 8192, "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63" },
	{ 8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b" },
	{ 16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4" },
	{ 31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47" },
	{ 102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085" },
};

/* extended (131-byte) outputs: hash, keyed_hash and derive_key */
static const struct { size_t len; int mode; const char *hex; } xof131[] = {
	{ 0, MODE_HASH,
	  "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	  "e00f03e7b69af26b7faaf09fcd333050338ddfe085b8cc869ca98b206c08243a"
	  "26f5487789e8f660afe6c99ef9e0c52b92e7393024a80459cf91f476f9ffdbda"
	  "7001c22e159b402631f277ca96f2defdf1078282314e763699a31c5363165421"
	  "cce14d" },
	{ 1025, MODE_HASH,
	  "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"
	  "f4c4a22b4b399155358a994e52bf255de60035742ec71bd08ac275a1b51cc6bf"
	  "e332b0ef84b409108cda080e6269ed4b3e2c3f7d722aa4cdc98d16deb554e562"
	  "7be8f955c98e1d5f9565a9194cad0c4285f93700062d9595adb992ae68ff1280"
	  "0ab67a" },
	{ 8193, MODE_HASH,
	  "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"
	  "b2282aa69be089359ea1154b9a9286c4a56af4de975a9aa4a5c497654914d279"
	  "bea60bb6d2cf7225a2fa0ff5ef56bbe4b149f3ed15860f78b4e2ad04e158e375"
	  "c1e0c0b551cd7dfc82f1b155c11b6b3ed51ec9edb30d133653bb5709d1dbd55f"
	  "4e1ff6" },
	{ 102400, MODE_HASH,
	  "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"
	  "e01c59dab908c04c3342b816941a26d69c2605ebee5ec5291cc55e15b76146e6"
	  "745f0601156c3596cb75065a9c57f35585a52e1ac70f69131c23d611ce11ee4a"
	  "b1ec2c009012d236648e77be9295dd0426f29b764d65de58eb7d01dd42248204"
	  "f45f8e" },
	{ 0, MODE_KEYED,
	  "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"
	  "b18171a2f22a4b94822c701f107153dba24918c4bae4d2945c20ece13387627d"
	  "3b73cbf97b797d5e59948c7ef788f54372df45e45e4293c7dc18c1d41144a975"
	  "8be58960856be1eabbe22c2653190de560ca3b2ac4aa692a9210694254c371e8"
	  "51bc8f" },
	{ 1, MODE_KEYED,
	  "6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b"
	  "6568c0490609413006fbd428eb3fd14e7756d90f73a4725fad147f7bf70fd61c"
	  "4e0cf7074885e92b0e3f125978b4154986d4fb202a3f331a3fb6cf349a3a70e4"
	  "9990f98fe4289761c8602c4e6ab1138d31d3b62218078b2f3ba9a88e1d08d0dd"
	  "4cea11" },
	{ 1024, MODE_KEYED,
	  "75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4"
	  "a78bc838c72852d4f49c864acb7adafe2478e824afe51c8919d06168414c265f"
	  "298a8094b1ad813a9b8614acabac321f24ce61c5a5346eb519520d38ecc43e89"
	  "b5000236df0597243e4d2493fd626730e2ba17ac4d8824d09d1a4a8f57b82277"
	  "78e2de" },
	{ 2049, MODE_KEYED,
	  "9f29700902f7c86e514ddc4df1e3049f258b2472b6dd5267f61bf13983b78dd5"
	  "f9a88abfefdfa1e00b418971f2b39c64ca621e8eb37fceac57fd0c8fc8e117d4"
	  "3b81447be22d5d8186f8f5919ba6bcc6846bd7d50726c06d245672c2ad4f6170"
	  "2c646499ee1173daa061ffe15bf45a631e2946d616a4c345822f1151284712f7"
	  "6b2b0e" },
	{ 8193, MODE_KEYED,
	  "954a2a75420c8d6547e3ba5b98d963e6fa6491addc8c023189cc519821b4a1f5"
	  "f03228648fd983aef045c2fa8290934b0866b615f585149587dda22990399653"
	  "28835a2b18f1d63b7e300fc76ff260b571839fe44876a4eae66cbac8c6769441"
	  "1ed7e09df51068a22c6e67d6d3dd2cca8ff12e3275384006c80f4db68023f24e"
	  "ebba57" },
	{ 31744, MODE_KEYED,
	  "efa53b389ab67c593dba624d898d0f7353ab99e4ac9d42302ee64cbf9939a419"
	  "3a7258db2d9cd32a7a3ecfce46144114b15c2fcb68a618a976bd74515d47be08"
	  "b628be420b5e830fade7c080e351a076fbc38641ad80c736c8a18fe3c66ce12f"
	  "95c61c2462a9770d60d0f77115bbcd3782b593016a4e728d4c06cee4505cb0c0"
	  "8a42ec" },
	{ 0, MODE_DERIVE,
	  "2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d"
	  "905630c8be290dfcf3e6842f13bddd573c098c3f17361f1f206b8cad9d088aa4"
	  "a3f746752c6b0ce6a83b0da81d59649257cdf8eb3e9f7d4998e41021fac119de"
	  "efb896224ac99f860011f73609e6e0e4540f93b273e56547dfd3aa1a035ba668"
	  "9d89a0" },
	{ 1, MODE_DERIVE,
	  "b3e2e340a117a499c6cf2398a19ee0d29cca2bb7404c73063382693bf66cb06c"
	  "5827b91bf889b6b97c5477f535361caefca0b5d8c4746441c576171119331589"
	  "50670f9aa8a05d791daae10ac683cbef8faf897c84e6114a59d2173c3f417023"
	  "a35d6983f2c7dfa57e7fc559ad751dbfb9ffab39c2ef8c4aafebc9ae973a64f0"
	  "c76551" },
	{ 1023, MODE_DERIVE,
	  "74a16c1c3d44368a86e1ca6df64be6a2f64cce8f09220787450722d85725dea5"
	  "9c413264404661e9e4d955409dfe4ad3aa487871bcd454ed12abfe2c2b1eb775"
	  "7588cf6cb18d2eccad49e018c0d0fec323bec82bf1644c6325717d13ea712e68"
	  "40d3e6e730d35553f59eff5377a9c350bcc1556694b924b858f329c44ee64b88"
	  "4ef00d" },
	{ 3073, MODE_DERIVE,
	  "72613c9ec9ff7e40f8f5c173784c532ad852e827dba2bf85b2ab4b76f7079081"
	  "576288e552647a9d86481c2cae75c2dd4e7c5195fb9ada1ef50e9c5098c249d7"
	  "43929191441301c69e1f48505a4305ec1778450ee48b8e69dc23a25960fe3307"
	  "0ea549119599760a8a2d28aeca06b8c5e9ba58bc19e11fe57b6ee98aa44b2a8e"
	  "6b14a5" },
	{ 8193, MODE_DERIVE,
	  "af1e0346e389b17c23200270a64aa4e1ead98c61695d917de7d5b00491c9b0f1"
	  "2f20a01d6d622edf3de026a4db4e4526225debb93c1237934d71c7340bb59161"
	  "58cbdafe9ac3225476b6ab57a12357db3abbad7a26c6e66290e44034fb08a20a"
	  "8d0ec264f309994d2810c49cfba6989d7abb095897459f5425adb48aba07c5fb"
	  "3c83c0" },
	{ 102400, MODE_DERIVE,
	  "4652cff7a3f385a6103b5c260fc1593e13c778dbe608efb092fe7ee69df6e9c6"
	  "d83a3e041bc3a48df2879f4a0a3ed40e7c961c73eff740f3117a0504c2dff478"
	  "6d44fb17f1549eb0ba585e40ec29bf7732f0b7e286ff8acddc4cb1e23b87ff5d"
	  "824a986458dcc6a04ac83969b80637562953df51ed1a7e90a7926924d2763778"
	  "be8560" },
};

static const char *const impls[] = { "portable", "sse41", "avx2", "avx512" };
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

static uint8_t *vec_input(size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	for (size_t i = 0; p && i < len; i++)
		p[i] = (uint8_t)(i % 251);
	return p;
}

static void tohex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void init_mode(struct snap_b3 *h, int mode)
{
	if (mode == MODE_KEYED)
		snap_b3_init_keyed(h, (const uint8_t *)vec_key);
	else if (mode == MODE_DERIVE)
		snap_b3_init_derive_key(h, vec_context);
	else
		snap_b3_init(h);
}

/* Deterministic pseudo-random numbers for split points and contents. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void hash_split(const uint8_t *in, size_t len, size_t maxpiece, int mode, uint8_t *out,
		       size_t outlen)
{
	struct snap_b3 h;
	size_t off = 0;

	init_mode(&h, mode);
	while (off < len) {
		size_t n = maxpiece ? (size_t)(rnd() % (maxpiece + 1)) : len - off;

		if (n > len - off)
			n = len - off;
		snap_b3_update(&h, in + off, n);
		off += n;
	}
	snap_b3_final(&h, out, outlen);
}

static int forced_paths(int want[NIMPLS])
{
	int n = 0;

	for (size_t i = 0; i < NIMPLS; i++) {
		want[i] = snap_b3_force_impl(impls[i]) == 0;
		n += want[i];
	}
	return n;
}

TEST(official_vectors_hash_first_32_bytes_on_every_path)
{
	int have[NIMPLS];

	REQUIRE(forced_paths(have) >= 1);
	for (size_t p = 0; p < NIMPLS; p++) {
		if (!have[p])
			continue;
		REQUIRE(snap_b3_force_impl(impls[p]) == 0);
		for (size_t i = 0; i < sizeof(hash32) / sizeof(hash32[0]); i++) {
			uint8_t *in = vec_input(hash32[i].len), out[32];
			char hex[65];

			REQUIRE(in);
			snap_b3_hash(in, hash32[i].len, 1, out);
			tohex(out, 32, hex);
			if (strcmp(hex, hash32[i].hex))
				t_fail(__FILE__, __LINE__, "%s len %zu: %s", impls[p], hash32[i].len, hex);
			hash_split(in, hash32[i].len, 1500, MODE_HASH, out, 32);
			tohex(out, 32, hex);
			if (strcmp(hex, hash32[i].hex))
				t_fail(__FILE__, __LINE__, "%s split len %zu: %s", impls[p], hash32[i].len, hex);
			free(in);
		}
	}
}

TEST(official_vectors_extended_keyed_and_derive_key)
{
	int have[NIMPLS];

	forced_paths(have);
	for (size_t p = 0; p < NIMPLS; p++) {
		if (!have[p])
			continue;
		REQUIRE(snap_b3_force_impl(impls[p]) == 0);
		for (size_t i = 0; i < sizeof(xof131) / sizeof(xof131[0]); i++) {
			uint8_t *in = vec_input(xof131[i].len), out[131];
			char hex[263];

			REQUIRE(in);
			hash_split(in, xof131[i].len, 0, xof131[i].mode, out, sizeof(out));
			tohex(out, sizeof(out), hex);
			if (strcmp(hex, xof131[i].hex))
				t_fail(__FILE__, __LINE__, "%s len %zu mode %d: %s", impls[p],
				       xof131[i].len, xof131[i].mode, hex);
			/* the default-length output is the extended output's prefix */
			hash_split(in, xof131[i].len, 333, xof131[i].mode, out, 32);
			tohex(out, 32, hex);
			CHECK(!strncmp(hex, xof131[i].hex, 64));
			free(in);
		}
	}
}

TEST(every_path_agrees_with_portable_on_chunk_and_batch_boundaries)
{
	static const size_t chunks[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33,
					 63, 64, 65, 127, 128, 129, 255, 256, 257, 300 };
	static const long deltas[] = { -1025, -1024, -1023, -65, -64, -63, -1, 0, 1, 63, 64, 65 };
	size_t maxlen = 300 * 1024 + 65;
	uint8_t *in = malloc(maxlen), ref[40], out[40];
	int have[NIMPLS];

	REQUIRE(in);
	for (size_t i = 0; i < maxlen; i++)
		in[i] = (uint8_t)rnd();
	REQUIRE(forced_paths(have) >= 1);
	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		for (size_t d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
			long l = (long)chunks[c] * 1024 + deltas[d];

			if (l < 0)
				continue;
			REQUIRE(snap_b3_force_impl("portable") == 0);
			hash_split(in, (size_t)l, 0, MODE_HASH, ref, sizeof(ref));
			for (size_t p = 1; p < NIMPLS; p++) {
				if (!have[p])
					continue;
				REQUIRE(snap_b3_force_impl(impls[p]) == 0);
				hash_split(in, (size_t)l, 0, MODE_HASH, out, sizeof(out));
				if (memcmp(ref, out, sizeof(out)))
					t_fail(__FILE__, __LINE__, "%s one update, len %ld", impls[p], l);
				hash_split(in, (size_t)l, 5000, MODE_KEYED, out, sizeof(out));
				hash_split(in, (size_t)l, 0, MODE_KEYED, ref, sizeof(ref));
				if (memcmp(ref, out, sizeof(out)))
					t_fail(__FILE__, __LINE__, "%s keyed split, len %ld", impls[p], l);
				hash_split(in, (size_t)l, 0, MODE_HASH, ref, sizeof(ref));
			}
		}
	}
	free(in);
}

TEST(random_update_splits_match_one_shot_on_every_path)
{
	size_t maxlen = 200000;
	uint8_t *in = malloc(maxlen), ref[32], out[32];
	int have[NIMPLS];

	REQUIRE(in);
	for (size_t i = 0; i < maxlen; i++)
		in[i] = (uint8_t)rnd();
	forced_paths(have);
	for (size_t p = 0; p < NIMPLS; p++) {
		if (!have[p])
			continue;
		REQUIRE(snap_b3_force_impl(impls[p]) == 0);
		for (int round = 0; round < 40; round++) {
			size_t len = (size_t)(rnd() % maxlen);
			/* tiny pieces, block-sized pieces, and pieces of many chunks */
			size_t maxpiece = round % 3 == 0 ? 7 : round % 3 == 1 ? 200 : 70000;

			snap_b3_hash(in, len, 1, ref);
			hash_split(in, len, maxpiece, MODE_HASH, out, 32);
			if (memcmp(ref, out, 32))
				t_fail(__FILE__, __LINE__, "%s len %zu pieces <= %zu", impls[p], len, maxpiece);
		}
	}
	free(in);
}

TEST(multithreaded_one_shot_matches_incremental_around_subtree_boundaries)
{
	static const size_t sizes[] = {
		(1u << 20) - 1, 1u << 20, (1u << 20) + 1, (1u << 20) + 1024, (1u << 20) + 1025,
		(2u << 20) - 1024, 2u << 20, (3u << 20) + 17, (4u << 20) + 64 * 1024,
		(8u << 20) + 1, 9u << 20,
	};
	size_t maxlen = (9u << 20) + 1;
	uint8_t *in = malloc(maxlen), ref[32], out[32];
	static const int threads[] = { 2, 3, 4, 0 };
	int have[NIMPLS];

	REQUIRE(in);
	for (size_t i = 0; i < maxlen; i++)
		in[i] = (uint8_t)(rnd() >> 7);
	forced_paths(have);
	for (size_t p = 0; p < NIMPLS; p++) {
		if (!have[p])
			continue;
		REQUIRE(snap_b3_force_impl(impls[p]) == 0);
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			hash_split(in, sizes[s], 100000, MODE_HASH, ref, 32);
			for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
				snap_b3_hash(in, sizes[s], threads[t], out);
				if (memcmp(ref, out, 32))
					t_fail(__FILE__, __LINE__, "%s len %zu threads %d", impls[p],
					       sizes[s], threads[t]);
			}
		}
	}
	free(in);
}

TEST(final_leaves_the_hasher_usable_and_copies_are_independent)
{
	uint8_t *in = vec_input(8193), a[32], b[32], c[32];
	struct snap_b3 h, copy;

	REQUIRE(in);
	snap_b3_init(&h);
	snap_b3_update(&h, in, 4000);
	snap_b3_final(&h, a, 32); /* mid-stream peek */
	copy = h;
	snap_b3_update(&h, in + 4000, 8193 - 4000);
	snap_b3_final(&h, b, 32);
	snap_b3_hash(in, 8193, 1, c);
	CHECK(!memcmp(b, c, 32));
	snap_b3_hash(in, 4000, 1, c);
	CHECK(!memcmp(a, c, 32));
	snap_b3_final(&copy, c, 32);
	CHECK(!memcmp(a, c, 32));
	free(in);
}

TEST(force_impl_rejects_unknown_names_and_reports_the_choice)
{
	CHECK_EQ(snap_b3_force_impl("sse2"), -EINVAL);
	REQUIRE(snap_b3_force_impl("portable") == 0);
	CHECK_STR(snap_b3_impl(), "portable");
	for (size_t i = 1; i < NIMPLS; i++) {
		int r = snap_b3_force_impl(impls[i]);

		CHECK(r == 0 || r == -ENOTSUP);
		if (r == 0)
			CHECK_STR(snap_b3_impl(), impls[i]);
	}
}
