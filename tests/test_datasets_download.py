"""Downloads over a local HTTP server: checksums, mirrors, and the convert flow."""
import contextlib
import functools
import hashlib
import http.server
import os
import threading

import pytest

from datasets import cifar10
from datasets import convert
from datasets import download


class QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args):
    pass


@contextlib.contextmanager
def serve(folder):
  """http://127.0.0.1:<port>/ serving folder, for the length of the with block."""
  handler = functools.partial(QuietHandler, directory=str(folder))
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
  thread.start()
  try:
    yield 'http://127.0.0.1:%d/' % server.server_address[1]
  finally:
    server.shutdown()
    server.server_close()


@pytest.fixture
def served(tmp_path):
  folder = tmp_path / 'www'
  folder.mkdir()
  (folder / 'data.bin').write_bytes(b'payload ' * 1000)
  with serve(folder) as url:
    yield url


def remote(urls, data=b'payload ' * 1000, algorithm='sha256'):
  return download.Remote('data.bin', tuple(urls), algorithm,
                         hashlib.new(algorithm, data).hexdigest(), len(data))


def test_fetch_verifies_and_renames(tmp_path, served):
  dest = tmp_path / 'dest'
  dest.mkdir()
  path = download.fetch(remote([served + 'data.bin']), str(dest), progress=False)
  assert path == str(dest / 'data.bin')
  assert os.listdir(dest) == ['data.bin']


def test_fetch_with_a_wrong_checksum_leaves_nothing(tmp_path, served):
  dest = tmp_path / 'dest'
  dest.mkdir()
  bad = remote([served + 'data.bin'], data=b'something else')
  with pytest.raises(OSError, match='checksum mismatch'):
    download.fetch(bad, str(dest), progress=False)
  assert os.listdir(dest) == []


def test_fetch_falls_back_to_the_next_mirror(tmp_path, served):
  dest = tmp_path / 'dest'
  dest.mkdir()
  path = download.fetch(remote([served + 'missing/data.bin', served + 'data.bin']),
                        str(dest), progress=False)
  assert os.path.getsize(path) == 8000
  with pytest.raises(OSError, match='404.*; .*404'):
    download.fetch(remote([served + 'a/data.bin', served + 'b/data.bin']), str(tmp_path),
                   progress=False)


def test_fetch_reuses_a_verified_copy(tmp_path):
  (tmp_path / 'data.bin').write_bytes(b'payload ' * 1000)
  unreachable = remote(['http://127.0.0.1:9/data.bin'])
  assert download.fetch(unreachable, str(tmp_path), progress=False) == str(
      tmp_path / 'data.bin')
  (tmp_path / 'data.bin').write_bytes(b'stale')
  with pytest.raises(OSError, match='could not download data.bin'):
    download.fetch(unreachable, str(tmp_path), progress=False)
  assert not (tmp_path / 'data.bin').exists()


def cifar_remote(url, path):
  with open(path, 'rb') as f:
    digest = hashlib.md5(f.read()).hexdigest()
  return [download.Remote('cifar-10-python.tar.gz', (url + 'cifar-10-python.tar.gz',), 'md5',
                          digest, os.path.getsize(path))]


def test_convert_downloads_converts_and_deletes_the_download(tmp_path, monkeypatch,
                                                             cifar10_python_source):
  with serve(os.path.dirname(cifar10_python_source.path)) as url:
    monkeypatch.setattr(cifar10, 'REMOTES', cifar_remote(url, cifar10_python_source.path))
    out = tmp_path / 'out'
    info = convert.run('cifar10', str(out), progress=False)
    assert info['splits']['train']['num_samples'] == 64
    assert info['source'].startswith('downloaded cifar-10-python.tar.gz (md5 ')
    assert not (out / 'cifar-10-python.tar.gz').exists()
    kept = tmp_path / 'kept'
    convert.run('cifar10', str(kept), keep_download=True, progress=False)
    assert (kept / 'cifar-10-python.tar.gz').exists()


def test_convert_with_a_bad_download_writes_nothing(tmp_path, monkeypatch,
                                                    cifar10_python_source):
  with serve(os.path.dirname(cifar10_python_source.path)) as url:
    bad = cifar_remote(url, cifar10_python_source.path)[0]._replace(digest='0' * 32)
    monkeypatch.setattr(cifar10, 'REMOTES', [bad])
    out = tmp_path / 'out'
    with pytest.raises(OSError, match='checksum mismatch'):
      convert.run('cifar10', str(out), progress=False)
    assert os.listdir(out) == []
