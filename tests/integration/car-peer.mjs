// The IPFS side of tests/integration/car.sh: the reference CAR implementation (@ipld/car,
// multiformats) reading and writing files, with hashes checked by @noble/hashes (BLAKE3) and
// multiformats (SHA-256). car.sh copies this file next to its node_modules and runs it.
//   node car-peer.mjs ls FILE.car                 verify every block; print roots and blocks
//   node car-peer.mjs write sha256|blake3 OUT FILE...   one raw block per FILE; roots = all FILEs
import fs from 'node:fs'
import { Readable } from 'node:stream'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CarWriter } from '@ipld/car/writer'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { create as digestOf } from 'multiformats/hashes/digest'
import { blake3 } from '@noble/hashes/blake3.js'

const SHA256 = 0x12
const BLAKE3 = 0x1e

function hashWith (code, bytes) {
  if (code === SHA256) return sha256.digest(bytes)
  if (code === BLAKE3) return digestOf(BLAKE3, blake3(bytes))
  throw new Error(`unknown multihash 0x${code.toString(16)}`)
}

const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

async function ls (file) {
  const it = await CarBlockIterator.fromIterable(Readable.from(fs.createReadStream(file)))
  for (const r of await it.getRoots()) console.log(`root ${r.toString()}`)
  for await (const { cid, bytes } of it) {
    const d = await hashWith(cid.multihash.code, bytes)
    if (!eq(d.digest, cid.multihash.digest)) throw new Error(`block ${cid} does not match its CID`)
    console.log(`block ${cid.toString()} ${bytes.length}`)
  }
}

async function write (hash, out, files) {
  const code = hash === 'blake3' ? BLAKE3 : SHA256
  const blocks = []
  for (const f of files) {
    const bytes = new Uint8Array(fs.readFileSync(f))
    blocks.push({ cid: CID.create(1, raw.code, await hashWith(code, bytes)), bytes })
  }
  const { writer, out: chunks } = CarWriter.create(blocks.map((b) => b.cid))
  const sink = fs.createWriteStream(out)
  const done = Readable.from(chunks).pipe(sink)
  for (const b of blocks) await writer.put(b)
  await writer.close()
  await new Promise((resolve, reject) => { done.on('finish', resolve); done.on('error', reject) })
}

const [cmd, ...args] = process.argv.slice(2)
try {
  if (cmd === 'ls') await ls(args[0])
  else if (cmd === 'write') await write(args[0], args[1], args.slice(2))
  else throw new Error('usage: car-peer.mjs ls FILE | write sha256|blake3 OUT FILE...')
} catch (e) {
  console.error(`car-peer: ${e.message}`)
  process.exit(1)
}
