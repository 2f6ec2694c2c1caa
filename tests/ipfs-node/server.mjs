// pacxfer test IPFS node: an offline Helia node behind a small HTTP server that
// speaks the path-gateway protocol (/ipfs, /ipns) and a Kubo-compatible subset
// of the RPC API (/api/v0/...). See README.md.
//
// Run: node_modules/.bin/node server.mjs --repo DIR [--port PORT] [--host HOST] [--log FILE]

import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'

import { unixfs } from '@helia/unixfs'
import { createVerifiedFetchWithHelia } from '@helia/verified-fetch'
import { FsBlockstore } from 'blockstore-fs'
import { FsDatastore } from 'datastore-fs'
import { createHeliaLight } from 'helia'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'

// ---------------------------------------------------------------- arguments

function parseArgs (argv) {
  const opts = { repo: null, port: 0, host: '127.0.0.1', log: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const eq = a.indexOf('=')
    const key = eq > 0 ? a.slice(0, eq) : a
    const val = () => (eq > 0 ? a.slice(eq + 1) : argv[++i])
    switch (key) {
      case '--repo': opts.repo = val(); break
      case '--port': opts.port = Number(val()); break
      case '--host': opts.host = val(); break
      case '--log': opts.log = val(); break
      case '-h':
      case '--help':
        process.stdout.write('usage: node server.mjs --repo DIR [--port PORT] [--host HOST] [--log FILE]\n')
        process.exit(0)
        break
      default:
        process.stderr.write(`unknown argument: ${a}\n`)
        process.exit(2)
    }
  }
  if (opts.repo == null || opts.repo === '') {
    process.stderr.write('error: --repo DIR is required\n')
    process.exit(2)
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    process.stderr.write('error: --port must be an integer 0..65535\n')
    process.exit(2)
  }
  return opts
}

const opts = parseArgs(process.argv.slice(2))
const repo = path.resolve(opts.repo)

// ---------------------------------------------------------------- access log

let logFd = null
if (opts.log != null) {
  logFd = fs.openSync(opts.log, 'a')
}

function accessLog (line) {
  const text = line + '\n'
  try { fs.writeSync(2, text) } catch {}
  if (logFd != null) {
    try { fs.writeSync(logFd, text) } catch {}
  }
}

// ---------------------------------------------------------------- node state

await fsp.mkdir(repo, { recursive: true })
const rawBlockstore = new FsBlockstore(path.join(repo, 'blocks'))
const datastore = new FsDatastore(path.join(repo, 'data'))
await rawBlockstore.open()
await datastore.open()

// optional blake2b-256 support (Kubo's `hash=blake2b-256`). Uses modules that
// are installed as dependencies of helia; loaded lazily so startup stays fast
// and the rest of the node works without them.
let blake2bSupport = null
async function loadBlake2b () {
  if (blake2bSupport != null) return blake2bSupport
  const [{ blake2b }, dagPb, { from }] = await Promise.all([
    import('@noble/hashes/blake2.js'),
    import('@ipld/dag-pb'),
    import('multiformats/hashes/hasher')
  ])
  const hasher = from({
    name: 'blake2b-256',
    code: 0xb220,
    encode: (data) => blake2b(data, { dkLen: 32 })
  })
  blake2bSupport = { hasher, dagPb }
  return blake2bSupport
}

// Offline node: createHeliaLight builds no libp2p at all, and with no routers
// and no block brokers a missing block can never be fetched. Blocks are only
// ever read from the local blockstore, so serving blake2b-256 DAGs needs no
// extra hasher (Helia only verifies hashes of blocks fetched from peers).
const helia = createHeliaLight({
  blockstore: rawBlockstore,
  datastore,
  routers: [],
  blockBrokers: []
})
await helia.start()
const fsUnix = unixfs(helia)

// ---- bounded memory when streaming big files
//
// ipfs-unixfs-exporter pushes file data into an unbounded queue as fast as it
// can read blocks (and its blockReadConcurrency limit leaks, it-parallel
// 3.0.16), so a fast disk and a slow client would buffer the whole file. Each
// gateway request passes a `pacxferFlow` object in its options, which
// verified-fetch hands down to every blockstore.get of that request. Block
// reads are granted in call order (the order the exporter needs them), at most
// FLOW_MAX_INFLIGHT at a time, and only while fewer than FLOW_LIMIT bytes were
// read but not yet written to the socket. When the response loop is starved
// and nothing is in flight, the next read is granted regardless: the byte
// count also includes dag-pb overhead that is never sent, and this keeps that
// drift from stalling a response.
const FLOW_LIMIT = 8 * 1024 * 1024
const FLOW_MAX_INFLIGHT = 8

class Flow {
  constructor () {
    this.read = 0
    this.sent = 0
    this.starved = false
    this.closed = false
    this.inflight = 0
    this.nextTicket = 0
    this.serving = 0
    this.waiters = []
  }

  canGrant () {
    if (this.closed) return true
    if (this.inflight >= FLOW_MAX_INFLIGHT) return false
    return this.read - this.sent <= FLOW_LIMIT || (this.starved && this.inflight === 0)
  }

  // must be called synchronously when the read is issued (it takes a ticket)
  async acquire () {
    const ticket = this.nextTicket++
    while (!(ticket === this.serving && this.canGrant())) {
      await new Promise((resolve) => this.waiters.push(resolve))
    }
    this.serving++
    this.inflight++
    this.wake()
  }

  release () {
    this.inflight--
    this.wake()
  }

  wake () {
    if (this.waiters.length === 0) return
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }
}

const heliaGet = helia.blockstore.get.bind(helia.blockstore)
helia.blockstore.get = async function * (cid, options) {
  const flow = options?.pacxferFlow
  if (flow == null) {
    yield * heliaGet(cid, options)
    return
  }
  await flow.acquire()
  try {
    options?.signal?.throwIfAborted()
    for await (const chunk of heliaGet(cid, options)) {
      flow.read += chunk.byteLength
      yield chunk
    }
  } finally {
    flow.release()
  }
}

// verified-fetch's UnixFS plugin sniffs the content type with
// first(entry.content()), which starts a walk of the whole file that keeps
// reading in the background after the first chunk. Replace it with a walk
// bounded to the first bytes. (The plugin class is not exported by the package,
// hence the file import; the package version is pinned.)
const { UnixFSPlugin } = await import(new URL('./node_modules/@helia/verified-fetch/dist/src/plugins/plugin-handle-unixfs.js', import.meta.url))
const SNIFF_BYTES = 64 * 1024

class BoundedUnixFSPlugin extends UnixFSPlugin {
  async detectContentType (entry, filename, options) {
    if (entry.type === 'file') {
      const size = BigInt(entry.size ?? 0n)
      const length = size < BigInt(SNIFF_BYTES) ? size : BigInt(SNIFF_BYTES)
      const bounded = Object.create(entry)
      bounded.content = (opts) => entry.content({ ...opts, offset: 0, length })
      return super.detectContentType(bounded, filename, options)
    }
    return super.detectContentType(entry, filename, options)
  }
}

const verifiedFetch = await createVerifiedFetchWithHelia(helia, {
  plugins: [(pluginOptions) => new BoundedUnixFSPlugin(pluginOptions)]
})

// local names for /ipns/<name> (an offline node cannot resolve real IPNS)
const namesFile = path.join(repo, 'names.json')
const nodeFile = path.join(repo, 'node.json')
const names = new Map()
try {
  const obj = JSON.parse(await fsp.readFile(namesFile, 'utf8'))
  for (const [k, v] of Object.entries(obj)) names.set(k, v)
} catch (err) {
  if (err.code !== 'ENOENT') throw err
}

async function saveNames () {
  const tmp = `${namesFile}.${process.pid}.tmp`
  await fsp.writeFile(tmp, JSON.stringify(Object.fromEntries(names), null, 2) + '\n')
  await fsp.rename(tmp, namesFile)
}

// a stable, syntactically valid Ed25519 peer id (12D3KooW...) for /api/v0/id
// and for name/publish without key= (Kubo's "self" key)
let nodeInfo
try {
  nodeInfo = JSON.parse(await fsp.readFile(nodeFile, 'utf8'))
} catch (err) {
  if (err.code !== 'ENOENT') throw err
  const pub = randomBytes(32)
  const protoKey = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), pub])
  const mh = Buffer.concat([Buffer.from([0x00, protoKey.length]), protoKey])
  nodeInfo = {
    peerId: base58btc.baseEncode(mh),
    publicKey: protoKey.toString('base64')
  }
  await fsp.writeFile(nodeFile, JSON.stringify(nodeInfo, null, 2) + '\n')
}

function lookupName (name) {
  if (names.has(name)) return names.get(name)
  if (name === nodeInfo.peerId && names.has('self')) return names.get('self')
  return null
}

// ---------------------------------------------------------------- helpers

class HttpError extends Error {
  constructor (status, message, code = status >= 500 ? 0 : 1) {
    super(message)
    this.status = status
    this.code = code
  }
}

function sendJSON (res, status, obj) {
  const body = Buffer.from(JSON.stringify(obj) + '\n')
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': body.length
  })
  res.end(body)
}

function sendApiError (res, status, message, code = status >= 500 ? 0 : 1) {
  if (res.headersSent) {
    res.destroy()
    return
  }
  sendJSON(res, status, { Message: message, Code: code, Type: 'error' })
}

function sendText (res, status, text, extraHeaders = {}) {
  const body = Buffer.from(text.endsWith('\n') ? text : text + '\n')
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
    ...extraHeaders
  })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

// Go's strconv.ParseBool, plus a bare flag (`?pin`) meaning true
function parseBool (value, dflt) {
  if (value == null) return dflt
  if (value === '') return true
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false
  throw new HttpError(400, `invalid boolean value: "${value}"`)
}

function parseCidArg (arg) {
  if (arg == null || arg === '') throw new HttpError(400, 'argument "arg" is required')
  let s = arg
  if (s.startsWith('/ipfs/')) s = s.slice(6)
  const slash = s.indexOf('/')
  const root = slash >= 0 ? s.slice(0, slash) : s
  const rest = slash >= 0 ? s.slice(slash + 1).replace(/\/+$/, '') : ''
  let cid
  try {
    cid = CID.parse(root)
  } catch (err) {
    throw new HttpError(400, `invalid path "${arg}": ${err.message}`)
  }
  return { cid, rest }
}

async function resolveCidArg (arg) {
  const { cid, rest } = parseCidArg(arg)
  if (rest === '') return cid
  try {
    const stat = await fsUnix.stat(cid, { path: rest, offline: true })
    return stat.cid
  } catch (err) {
    throw new HttpError(500, `could not resolve ${arg}: ${err.message}`)
  }
}

// true when cid itself has a pin record (isPinned is also true for blocks that
// are only pinned as part of another DAG)
async function hasPin (cid) {
  try {
    await helia.pins.get(cid)
    return true
  } catch {
    return false
  }
}

// walk a DAG through the local blockstore only; returns the first missing CID
async function findMissingBlock (root, maxDepth = Infinity) {
  const stack = [{ cid: root, depth: 0 }]
  const seen = new Set()
  while (stack.length > 0) {
    const { cid, depth } = stack.pop()
    const key = cid.multihash.bytes.toString()
    if (seen.has(key)) continue
    seen.add(key)
    if (cid.multihash.code === 0x00) continue // identity: inlined
    if (!(await rawBlockstore.has(cid))) return cid
    if (depth >= maxDepth || cid.code === 0x55) continue
    let codec
    try {
      codec = await helia.getCodec(cid.code)
    } catch {
      continue
    }
    const chunks = []
    for await (const c of rawBlockstore.get(cid)) chunks.push(c)
    const node = codec.decode(Buffer.concat(chunks))
    for (const [, link] of walkLinks(node)) stack.push({ cid: link, depth: depth + 1 })
  }
  return null
}

function * walkLinks (node) {
  if (node?.Links != null && Array.isArray(node.Links)) { // dag-pb
    for (const l of node.Links) yield [l.Name, l.Hash]
    return
  }
  // generic IPLD data (dag-cbor, dag-json): any CID anywhere in the value
  const visit = function * (v) {
    const cid = CID.asCID(v)
    if (cid != null) { yield ['', cid]; return }
    if (v instanceof Uint8Array || v == null || typeof v !== 'object') return
    for (const x of Array.isArray(v) ? v : Object.values(v)) yield * visit(x)
  }
  yield * visit(node)
}

function waitDrain (res) {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

// ---------------------------------------------------------------- multipart

// Streaming multipart/form-data reader. Parts must be consumed in order; when
// the caller asks for the next part before draining the current one, the rest
// of the current part is buffered in memory.
class MultipartReader {
  constructor (source, boundary) {
    this.it = source[Symbol.asyncIterator]()
    // prepend CRLF so that the first delimiter matches like every other one
    this.buf = Buffer.from('\r\n')
    this.eof = false
    this.delim = Buffer.from(`\r\n--${boundary}`)
  }

  async fill () {
    if (this.eof) return false
    const { value, done } = await this.it.next()
    if (done) {
      this.eof = true
      return false
    }
    const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value)
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    return true
  }

  // next chunk of the current part's body, or null at its end
  async readBodyChunk () {
    for (;;) {
      const idx = this.buf.indexOf(this.delim)
      if (idx >= 0) {
        if (idx === 0) {
          return null
        }
        const out = this.buf.subarray(0, idx)
        this.buf = this.buf.subarray(idx)
        return out
      }
      const safe = this.buf.length - (this.delim.length - 1)
      if (safe > 0) {
        const out = this.buf.subarray(0, safe)
        this.buf = this.buf.subarray(safe)
        return out
      }
      if (!(await this.fill())) {
        throw new HttpError(400, 'multipart body ended inside a part')
      }
    }
  }

  async readUntil (needle, limit) {
    for (;;) {
      const idx = this.buf.indexOf(needle)
      if (idx >= 0) {
        const out = this.buf.subarray(0, idx)
        this.buf = this.buf.subarray(idx + needle.length)
        return out
      }
      if (this.buf.length > limit) throw new HttpError(400, 'multipart headers too large')
      if (!(await this.fill())) return null
    }
  }

  async * parts () {
    // skip the preamble up to the first delimiter
    const pre = await this.readUntil(this.delim, Infinity)
    if (pre == null) throw new HttpError(400, 'multipart body has no boundary')
    for (;;) {
      while (this.buf.length < 2) {
        if (!(await this.fill())) throw new HttpError(400, 'truncated multipart body')
      }
      if (this.buf[0] === 0x2d && this.buf[1] === 0x2d) { // "--": final delimiter
        return
      }
      // ignore transport padding after the delimiter, then CRLF
      const rest = await this.readUntil(Buffer.from('\r\n'), 1024)
      if (rest == null) throw new HttpError(400, 'truncated multipart body')
      while (this.buf.length < 2) {
        if (!(await this.fill())) throw new HttpError(400, 'truncated multipart body')
      }
      const headers = {}
      if (this.buf[0] === 0x0d && this.buf[1] === 0x0a) {
        // a part without headers
        this.buf = this.buf.subarray(2)
      } else {
        const head = await this.readUntil(Buffer.from('\r\n\r\n'), 64 * 1024)
        if (head == null) throw new HttpError(400, 'truncated multipart headers')
        for (const line of head.toString('utf8').split('\r\n')) {
          const c = line.indexOf(':')
          if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim()
        }
      }
      const part = new Part(this, headers)
      yield part
      await part.finish()
      // consume the delimiter itself
      this.buf = this.buf.subarray(this.delim.length)
    }
  }
}

class Part {
  constructor (reader, headers) {
    this.reader = reader
    this.headers = headers
    this.queue = []
    this.ended = false
    this.lock = Promise.resolve()
  }

  // serialise reads from the wire
  async next () {
    const run = this.lock.then(async () => {
      if (this.queue.length > 0) return this.queue.shift()
      if (this.ended) return null
      const chunk = await this.reader.readBodyChunk()
      if (chunk == null) this.ended = true
      return chunk
    })
    this.lock = run.catch(() => {})
    return run
  }

  async finish () {
    await this.lock
    while (!this.ended) {
      const chunk = await this.reader.readBodyChunk()
      if (chunk == null) this.ended = true
      else this.queue.push(chunk)
    }
  }

  async * content () {
    for (;;) {
      const chunk = await this.next()
      if (chunk == null) return
      yield chunk
    }
  }

  async drain () {
    for await (const _ of this.content()) {} // eslint-disable-line no-unused-vars
  }
}

function parseContentDisposition (value) {
  const out = {}
  if (value == null) return out
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g
  let m
  while ((m = re.exec(value)) != null) {
    out[m[1].toLowerCase()] = m[2] != null ? m[2].replace(/\\(.)/g, '$1') : m[3].trim()
  }
  return out
}

function partPath (headers) {
  const cd = parseContentDisposition(headers['content-disposition'])
  let name = cd.filename ?? cd['filename*'] ?? ''
  if (cd['filename*'] != null && cd.filename == null) {
    name = name.replace(/^[^']*'[^']*'/, '')
  }
  // Kubo's clients URL-encode the file name ("dir%2Ffile")
  try { name = decodeURIComponent(name) } catch {}
  return name.replace(/^\/+/, '').replace(/\/+$/, '')
}

// ---------------------------------------------------------------- add

// A write-only blockstore for only-hash: keeps nothing
const discardBlockstore = {
  async put (cid) { return cid },
  async has () { return false },
  async * get (cid) { throw new Error(`block ${cid} not kept (only-hash)`) }
}

// Re-hashes every block the importer writes with another hash function,
// rewriting dag-pb links (and their Tsize) to the new CIDs. The importer always
// writes children before their parents, so the mapping is known in time.
class RehashBlockstore {
  constructor (target, hasher, dagPb) {
    this.target = target
    this.hasher = hasher
    this.dagPb = dagPb
    this.map = new Map()
  }

  async put (cid, bytes, options) {
    let out = bytes
    let tsize
    if (cid.code === this.dagPb.code) {
      const node = this.dagPb.decode(bytes)
      let childSum = 0
      const Links = node.Links.map((l) => {
        const m = this.map.get(l.Hash.toString())
        if (m == null) throw new Error(`rehash: child ${l.Hash} not seen yet`)
        childSum += m.tsize
        const link = { Hash: m.cid, Tsize: m.tsize }
        if (l.Name != null) link.Name = l.Name
        return link
      })
      const n = { Links }
      if (node.Data != null) n.Data = node.Data
      out = this.dagPb.encode(n)
      tsize = out.length + childSum
    } else {
      tsize = bytes.length
    }
    const digest = await this.hasher.digest(out)
    const newCid = CID.createV1(cid.code, digest)
    this.map.set(cid.toString(), { cid: newCid, tsize })
    await this.target.put(newCid, out, options)
    return cid
  }

  async has () { return false }
  async * get (cid) { throw new Error(`rehash store cannot read ${cid}`) }

  lookup (cid) {
    return this.map.get(cid.toString())
  }
}

async function handleAdd (req, res, params) {
  const ctype = req.headers['content-type'] ?? ''
  const bm = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(ctype)
  if (!/^multipart\/form-data/i.test(ctype) || bm == null) {
    throw new HttpError(400, 'expected a multipart/form-data body with a boundary')
  }
  const boundary = bm[1] ?? bm[2]

  const hashName = (params.get('hash') ?? 'sha2-256').toLowerCase()
  if (hashName !== 'sha2-256' && hashName !== 'blake2b-256') {
    throw new HttpError(500, `unsupported hash function "${hashName}" (this node supports sha2-256 and blake2b-256)`, 0)
  }
  let cidVersion = 0
  const cv = params.get('cid-version')
  if (cv != null && cv !== '') {
    if (cv !== '0' && cv !== '1') throw new HttpError(400, `unknown CID version: ${cv}`)
    cidVersion = Number(cv)
  }
  if (hashName !== 'sha2-256') {
    if (cv === '0') throw new HttpError(400, 'CIDv0 only supports sha2-256')
    cidVersion = 1
  }
  const rawLeaves = parseBool(params.get('raw-leaves'), cidVersion > 0)
  const pin = parseBool(params.get('pin'), true)
  const onlyHash = parseBool(params.get('only-hash'), false)
  const wrap = parseBool(params.get('wrap-with-directory'), false)
  const quieter = parseBool(params.get('quieter'), false)
  if (parseBool(params.get('nocopy'), false)) {
    throw new HttpError(500, 'filestore is not enabled on this node (nocopy is not supported)', 0)
  }
  if (parseBool(params.get('trickle'), false)) {
    throw new HttpError(500, 'trickle layout is not supported by this node', 0)
  }
  if (parseBool(params.get('inline'), false)) {
    throw new HttpError(500, 'inline is not supported by this node', 0)
  }
  let chunkSize = 262144
  const chunker = params.get('chunker')
  if (chunker != null && chunker !== '' && chunker !== 'default') {
    const m = /^size-(\d+)$/.exec(chunker)
    if (m == null) throw new HttpError(500, `unsupported chunker "${chunker}" (only size-N)`, 0)
    chunkSize = Number(m[1])
    if (chunkSize <= 0) throw new HttpError(400, 'chunker size must be greater than 0')
    if (chunkSize > 2 * 1024 * 1024) throw new HttpError(400, 'chunker parameters may not exceed the maximum chunk size of 2097152')
  }

  let target = onlyHash ? discardBlockstore : helia.blockstore
  let rehash = null
  if (hashName === 'blake2b-256') {
    const { hasher, dagPb } = await loadBlake2b()
    rehash = new RehashBlockstore(target, hasher, dagPb)
    target = rehash
  }

  const reader = new MultipartReader(req, boundary)
  async function * candidates () {
    for await (const part of reader.parts()) {
      const p = partPath(part.headers)
      const type = (part.headers['content-type'] ?? '').toLowerCase()
      if (type.startsWith('application/x-directory')) {
        await part.drain()
        if (p !== '') yield { path: p }
        continue
      }
      if (type.startsWith('application/symlink')) {
        await part.drain()
        continue
      }
      yield { path: p, content: part.content() }
    }
  }

  const results = []
  for await (const entry of importer(candidates(), target, {
    cidVersion,
    rawLeaves,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    wrapWithDirectory: wrap,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode: 174 }),
    shardSplitThresholdBytes: 262144,
    shardSplitStrategy: 'links-bytes',
    fieldOrder: 'links-first',
    fileImportConcurrency: 1,
    blockWriteConcurrency: 10
  })) {
    let cid = entry.cid
    let size = entry.size
    if (rehash != null) {
      const m = rehash.lookup(cid)
      if (m != null) {
        cid = m.cid
        size = m.tsize
      }
    }
    results.push({ Name: entry.path ?? cid.toString(), Hash: cid.toString(), Size: String(size) })
  }
  if (results.length === 0) throw new HttpError(400, 'no files in the request body')

  if (pin && !onlyHash) {
    // pin the roots (top-level entries) like Kubo does
    const roots = new Set()
    for (const r of results) {
      if (wrap ? r.Name === '' : !r.Name.includes('/')) roots.add(r.Hash)
    }
    for (const c of roots) {
      const cid = CID.parse(c)
      if (!(await hasPin(cid))) {
        for await (const _ of helia.pins.add(cid, { offline: true })) {} // eslint-disable-line no-unused-vars
      }
    }
  }

  const out = quieter ? [results[results.length - 1]] : results
  const body = Buffer.from(out.map((r) => JSON.stringify(r) + '\n').join(''))
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': body.length,
    'x-chunked-output': '1'
  })
  res.end(body)
}

// ---------------------------------------------------------------- other RPC

async function handlePinAdd (req, res, params) {
  const args = params.getAll('arg')
  if (args.length === 0) throw new HttpError(400, 'argument "ipfs-path" is required')
  const recursive = parseBool(params.get('recursive'), true)
  const pins = []
  for (const arg of args) {
    const cid = await resolveCidArg(arg)
    if (!(await rawBlockstore.has(cid))) {
      throw new HttpError(500, `pin: block ${cid} is not in the local blockstore (offline node)`, 0)
    }
    if (!(await hasPin(cid))) {
      // Helia's pin walker swallows a missing block (the pin would be recorded
      // for a partial DAG), so check the DAG is complete first
      const missingBlock = await findMissingBlock(cid, recursive ? Infinity : 0)
      if (missingBlock != null) {
        throw new HttpError(500, `pin: ${cid}: block ${missingBlock} is not in the local blockstore (offline node)`, 0)
      }
      try {
        for await (const _ of helia.pins.add(cid, { offline: true, depth: recursive ? Infinity : 0 })) {} // eslint-disable-line no-unused-vars
      } catch (err) {
        const msg = err.name === 'BlockNotFoundWhileOfflineError'
          ? 'part of the DAG is not in the local blockstore (offline node)'
          : err.message
        throw new HttpError(500, `pin: ${cid}: ${msg}`, 0)
      }
    }
    pins.push(cid.toString())
  }
  sendJSON(res, 200, { Pins: pins })
}

async function handleBlockRm (req, res, params) {
  const args = params.getAll('arg')
  if (args.length === 0) throw new HttpError(400, 'argument "cid" is required')
  const force = parseBool(params.get('force'), false)
  const quiet = parseBool(params.get('quiet'), false)
  const lines = []
  let failed = false
  for (const arg of args) {
    const { cid } = parseCidArg(arg)
    // bypasses Helia's pin check on purpose: tests remove inner blocks of
    // pinned DAGs to get a partly present DAG
    if (await rawBlockstore.has(cid)) {
      await rawBlockstore.delete(cid)
      if (!quiet) lines.push({ Hash: cid.toString() })
    } else if (!force) {
      failed = true
      lines.push({ Hash: cid.toString(), Error: 'ipld: could not find ' + cid.toString() })
    }
  }
  if (failed && args.length === 1) {
    throw new HttpError(500, lines[0].Error, 0)
  }
  const body = Buffer.from(lines.map((l) => JSON.stringify(l) + '\n').join(''))
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
}

async function handleNamePublish (req, res, params) {
  const arg = params.get('arg')
  if (arg == null || arg === '') throw new HttpError(400, 'argument "ipfs-path" is required')
  const { cid, rest } = parseCidArg(arg)
  const value = `/ipfs/${cid}${rest !== '' ? '/' + rest : ''}`
  const key = params.get('key') ?? 'self'
  if (key === '' || key.includes('/')) throw new HttpError(400, `invalid key name "${key}"`)
  names.set(key, value)
  await saveNames()
  sendJSON(res, 200, { Name: key === 'self' ? nodeInfo.peerId : key, Value: value })
}

async function handleNameResolve (req, res, params) {
  let name = params.get('arg') ?? 'self'
  if (name.startsWith('/ipns/')) name = name.slice(6)
  const slash = name.indexOf('/')
  const sub = slash >= 0 ? name.slice(slash) : ''
  if (slash >= 0) name = name.slice(0, slash)
  const value = name === 'self' ? names.get('self') : lookupName(name)
  if (value == null) throw new HttpError(500, `could not resolve name "${name}" (offline node, not published locally)`, 0)
  sendJSON(res, 200, { Path: value + sub })
}

async function handleId (req, res) {
  sendJSON(res, 200, {
    ID: nodeInfo.peerId,
    PublicKey: nodeInfo.publicKey,
    Addresses: [],
    AgentVersion: `pacxfer-test-node/helia-${helia.info.version}`,
    ProtocolVersion: 'ipfs/0.1.0',
    Protocols: []
  })
}

const apiRoutes = {
  add: handleAdd,
  'pin/add': handlePinAdd,
  'block/rm': handleBlockRm,
  'name/publish': handleNamePublish,
  'name/resolve': handleNameResolve,
  id: handleId
}

async function handleApi (req, res, url) {
  const name = url.pathname.slice('/api/v0/'.length).replace(/\/+$/, '')
  const handler = apiRoutes[name]
  if (handler == null) {
    sendApiError(res, 404, `unknown command "${name}" (this test node implements: ${Object.keys(apiRoutes).join(', ')})`, 0)
    req.resume()
    return
  }
  if (req.method !== 'POST') {
    req.resume()
    res.setHeader('allow', 'POST')
    sendApiError(res, 405, `${req.method} is not allowed, use POST`, 1)
    return
  }
  try {
    await handler(req, res, url.searchParams)
    if (name !== 'add') req.resume()
  } catch (err) {
    req.resume()
    const status = err instanceof HttpError ? err.status : 500
    const code = err instanceof HttpError ? err.code : 0
    sendApiError(res, status, err.message ?? String(err), code)
  }
}

// ---------------------------------------------------------------- gateway

const FORMATS = {
  raw: 'application/vnd.ipld.raw',
  car: 'application/vnd.ipld.car',
  tar: 'application/x-tar',
  'dag-json': 'application/vnd.ipld.dag-json',
  'dag-cbor': 'application/vnd.ipld.dag-cbor',
  json: 'application/json',
  cbor: 'application/cbor',
  'ipns-record': 'application/vnd.ipfs.ipns-record'
}

const SKIP_HEADERS = new Set(['transfer-encoding', 'connection', 'keep-alive'])

async function handleGateway (req, res, url) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    req.resume()
    sendText(res, 405, 'method not allowed', { allow: 'GET, HEAD' })
    return
  }
  const m = /^\/(ipfs|ipns)\/([^/]+)(\/.*)?$/.exec(url.pathname)
  if (m == null) {
    sendText(res, 400, `invalid path "${url.pathname}"`)
    return
  }
  const cacheControl = (req.headers['cache-control'] ?? '').toLowerCase()
  const onlyIfCached = cacheControl.split(',').some((t) => t.trim() === 'only-if-cached')
  const missing = (what) => {
    if (onlyIfCached) sendText(res, 412, `${what} is not in the local blockstore (only-if-cached)`)
    else sendText(res, 502, `${what} is not available (offline node, not in the local blockstore)`)
  }

  const ns = m[1]
  let root = m[2]
  let rest = m[3] ?? ''
  if (ns === 'ipns') {
    let name
    try { name = decodeURIComponent(root) } catch { name = root }
    const value = lookupName(name)
    if (value == null) {
      if (onlyIfCached) sendText(res, 412, `IPNS name "${name}" is not published on this node (only-if-cached)`)
      else sendText(res, 502, `could not resolve IPNS name "${name}" (offline node; publish it with /api/v0/name/publish)`)
      return
    }
    const v = value.slice('/ipfs/'.length)
    const slash = v.indexOf('/')
    root = slash >= 0 ? v.slice(0, slash) : v
    const sub = slash >= 0 ? v.slice(slash).split('/').map(encodeURIComponent).join('/') : ''
    rest = sub + rest
  }

  let cid
  try {
    cid = CID.parse(root)
  } catch (err) {
    sendText(res, 400, `invalid CID "${root}": ${err.message}`)
    return
  }

  // cheap presence check of the root block (identity CIDs are always present)
  if (cid.multihash.code !== 0x00 && !(await rawBlockstore.has(cid))) {
    missing(`block ${cid}`)
    return
  }

  const headers = new Headers()
  const format = url.searchParams.get('format')
  if (format != null && format !== '') {
    const accept = FORMATS[format]
    if (accept == null) {
      sendText(res, 400, `unsupported format "${format}"`)
      return
    }
    headers.set('accept', accept)
  } else if (req.headers.accept != null) {
    headers.set('accept', req.headers.accept)
  }
  if (req.headers.range != null) headers.set('range', req.headers.range)
  if (req.headers['if-none-match'] != null) headers.set('if-none-match', req.headers['if-none-match'])
  if (onlyIfCached) headers.set('cache-control', 'only-if-cached')

  const search = new URLSearchParams()
  for (const k of ['filename', 'download']) {
    if (url.searchParams.has(k)) search.set(k, url.searchParams.get(k))
  }
  const qs = search.toString()
  const resource = `ipfs://${cid}${rest}${qs !== '' ? '?' + qs : ''}`

  const controller = new AbortController()
  const flow = new Flow()
  res.on('close', () => {
    // stops any block reads still running for this request
    flow.closed = true
    flow.wake()
    controller.abort()
  })

  let resp
  try {
    resp = await verifiedFetch(resource, {
      method: 'GET',
      headers,
      session: false,
      // the node has no way to fetch blocks: make every missing block an
      // immediate BlockNotFoundWhileOfflineError (412) instead of an error
      offline: true,
      signal: controller.signal,
      // handed down to the exporter and blockstore.get (see Flow above)
      blockReadConcurrency: 8,
      pacxferFlow: flow
    })
  } catch (err) {
    if (controller.signal.aborted) return
    sendText(res, 500, `gateway error: ${err.message}`)
    return
  }

  const status = resp.status
  // with offline: true a missing inner block (path component or first leaf)
  // gives 412; without only-if-cached Kubo would try the network and fail
  if (status === 412 && !onlyIfCached) {
    await resp.body?.cancel().catch(() => {})
    missing(`content under ${cid}${rest}`)
    return
  }
  const outHeaders = {}
  resp.headers.forEach((value, key) => {
    if (!SKIP_HEADERS.has(key)) outHeaders[key] = value
  })
  res.writeHead(status, outHeaders)

  if (req.method === 'HEAD' || resp.body == null) {
    await resp.body?.cancel().catch(() => {})
    res.end()
    return
  }

  // send the status line and headers now: if a block turns out to be missing
  // before the first byte, the client still sees the status and a short body
  res.flushHeaders()
  const reader = resp.body.getReader()
  try {
    for (;;) {
      // only count as starved when the read does not complete at once (a
      // chunk already queued resolves within the same tick)
      let pending = true
      const starveTimer = setImmediate(() => {
        if (pending) {
          flow.starved = true
          flow.wake()
        }
      })
      const { done, value } = await reader.read()
      pending = false
      clearImmediate(starveTimer)
      flow.starved = false
      if (done) break
      if (res.destroyed) {
        await reader.cancel().catch(() => {})
        return
      }
      const ok = res.write(value)
      flow.sent += value.byteLength
      flow.wake()
      if (!ok) await waitDrain(res)
    }
    res.end()
  } catch (err) {
    // a block is missing mid-stream (partly present DAG) or the client went
    // away: cut the connection so the body visibly ends early
    reader.cancel().catch(() => {})
    res.destroy()
  }
}

// ---------------------------------------------------------------- server

const server = http.createServer((req, res) => {
  let bytes = 0
  const origWrite = res.write
  const origEnd = res.end
  const count = (chunk, enc) => {
    if (chunk == null || typeof chunk === 'function') return
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk, typeof enc === 'string' ? enc : 'utf8') : chunk.length
  }
  res.write = function (chunk, enc, cb) {
    if (req.method !== 'HEAD') count(chunk, enc)
    return origWrite.call(this, chunk, enc, cb)
  }
  res.end = function (chunk, enc, cb) {
    if (req.method !== 'HEAD') count(chunk, enc)
    return origEnd.call(this, chunk, enc, cb)
  }
  res.on('close', () => {
    accessLog(`${req.method} ${req.url} ${res.statusCode} ${bytes}`)
  })

  let url
  try {
    url = new URL(req.url, 'http://localhost')
  } catch {
    req.resume()
    sendText(res, 400, 'bad request')
    return
  }

  const p = url.pathname
  let work
  if (p.startsWith('/api/v0/')) {
    work = handleApi(req, res, url)
  } else if (p.startsWith('/ipfs/') || p.startsWith('/ipns/')) {
    req.resume()
    work = handleGateway(req, res, url)
  } else {
    req.resume()
    sendText(res, 404, 'not found: this node serves /ipfs/, /ipns/ and /api/v0/')
    return
  }
  work.catch((err) => {
    try {
      if (!res.headersSent) sendText(res, 500, `internal error: ${err?.message ?? err}`)
      else res.destroy()
    } catch {}
  })
})

server.keepAliveTimeout = 5000
server.requestTimeout = 0 // large uploads may take a while

let shuttingDown = false
async function shutdown (signal) {
  if (shuttingDown) return
  shuttingDown = true
  const force = setTimeout(() => process.exit(1), 5000)
  force.unref()
  server.close()
  server.closeAllConnections()
  try {
    await helia.stop()
    await rawBlockstore.close()
    await datastore.close()
  } catch (err) {
    process.stderr.write(`error during shutdown: ${err?.message ?? err}\n`)
  }
  if (logFd != null) {
    try { fs.closeSync(logFd) } catch {}
  }
  process.exit(0)
}
// some Helia internals (e.g. the pin graph walker hitting a missing block) can
// reject a promise nobody awaits: log it instead of dying
process.on('unhandledRejection', (err) => {
  // reads still running when a request ends are aborted on purpose
  if (err?.name === 'AbortError') return
  try { fs.writeSync(2, `# unhandled rejection: ${err?.name ?? ''} ${err?.message ?? err}\n`) } catch {}
})
process.on('SIGTERM', () => { shutdown('SIGTERM') })
process.on('SIGINT', () => { shutdown('SIGINT') })

server.on('error', (err) => {
  process.stderr.write(`server error: ${err.message}\n`)
  process.exit(1)
})

server.listen(opts.port, opts.host, () => {
  const { port } = server.address()
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host
  fs.writeSync(1, `listening http://${host}:${port}\n`)
})
