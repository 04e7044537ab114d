import { test } from 'node:test';
import assert from 'node:assert/strict';

import { daskClientCode, pythonString } from '../src/snippets';

const literals: [string, string][] = [
  ['dask-gateway.1a2b', '"dask-gateway.1a2b"'],
  ['a"b', '"a\\"b"'],
  ['back\\slash', '"back\\\\slash"'],
  ['line\nbreak', '"line\\nbreak"'],
  ['tab\tcr\r', '"tab\\tcr\\r"'],
  ['bell\x07del\x7f', '"bell\\x07del\\x7f"'],
  ['sep\u2028', '"sep\\u2028"'],
  ['ünïcode ✓', '"ünïcode ✓"'],
  ['"); import os; os.system("rm -rf ~', '"\\"); import os; os.system(\\"rm -rf ~"']
];
for (const [text, want] of literals) {
  test(`pythonString(${JSON.stringify(text)})`, () => assert.equal(pythonString(text), want));
}

test('the client code connects through the gateway, not a tcp address', () => {
  assert.equal(
    daskClientCode('1a2b3c'),
    'from dask_gateway import Gateway\n\nclient = Gateway().connect("1a2b3c").get_client()\nclient'
  );
  assert.ok(!daskClientCode('x').includes('tcp://'));
  assert.ok(daskClientCode('a"\nimport os').includes('connect("a\\"\\nimport os")'));
});
