// The protocol bench's gRPC load client writes gRPC frames on node:http2 itself: its calls must be what
// grpc-js's server reads, and a failed call (a trailers-only answer) must count as one.
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { grpcFrame, unaryCall } from '../../bench/grpc-load-client';
import { clientConstructors } from '../../src/grpc/protos';
import { addModel, writeModelFolder } from '../fixtures/onnx-models';
import { TestServer, startServer, tempDir } from '../fixtures/server';

let s: TestServer;
let session: http2.ClientHttp2Session;
const service = clientConstructors().inference.service;

beforeAll(async () => {
  const store = tempDir('store');
  writeModelFolder(path.join(store, 'plus'), addModel([10, 20]));
  s = await startServer({ workers: '1', 'model-store': store, models: ['plus'] });
  session = http2.connect(`http://${s.grpc}`);
}, 60_000);

afterAll(async () => {
  session?.close();
  await s?.close();
});

test('a frame is a 0 flag, the big-endian length and the message', () => {
  expect([...grpcFrame(Buffer.from([7, 8, 9]))]).toEqual([0, 0, 0, 0, 3, 7, 8, 9]);
});

test('ModelInfer through the lean client answers as through grpc-js', async () => {
  const x = Buffer.from(new Float32Array([1, 2]).buffer);
  const request = { model_name: 'plus', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [x] };
  const answer = await unaryCall(session, service.ModelInfer.path, grpcFrame(service.ModelInfer.requestSerialize(request)));
  expect(answer.readUInt32BE(1)).toBe(answer.length - 5);
  const out = (service.ModelInfer.responseDeserialize(answer.subarray(5)) as { raw_output_contents: Buffer[] }).raw_output_contents[0];
  expect(Array.from(new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length)))).toEqual([11, 22]);
});

test('a call the server refuses rejects with its grpc-status', async () => {
  const request = { model_name: 'nope', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2] }], raw_input_contents: [Buffer.alloc(8)] };
  // NOT_FOUND is 5.
  await expect(unaryCall(session, service.ModelInfer.path, grpcFrame(service.ModelInfer.requestSerialize(request)))).rejects.toThrow('grpc-status 5');
});
