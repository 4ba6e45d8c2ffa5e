"""datasets.archive: members are read in memory; unsafe names and links are refused."""
import io
import os
import stat
import tarfile
import zipfile

import pytest

from datasets import archive


def make_tar(path, members, mode='w:gz'):
  """members: (name, bytes) for files, or (name, TarInfo type, linkname) for others."""
  with tarfile.open(path, mode) as tar:
    for member in members:
      info = tarfile.TarInfo(member[0])
      if len(member) == 2:
        info.size = len(member[1])
        tar.addfile(info, io.BytesIO(member[1]))
      else:
        info.type, info.linkname = member[1], member[2]
        tar.addfile(info)
  return str(path)


def make_zip(path, members, symlink=None):
  with zipfile.ZipFile(path, 'w') as archive_file:
    for name, data in members:
      archive_file.writestr(name, data)
    if symlink:
      info = zipfile.ZipInfo(symlink[0])
      info.external_attr = (stat.S_IFLNK | 0o777) << 16
      archive_file.writestr(info, symlink[1])
  return str(path)


def test_reads_regular_files_of_tar_and_zip(tmp_path):
  members = [('root/a/1.jpg', b'one'), ('./root/b/2.jpg', b'two')]
  expected = [('root/a/1.jpg', b'one'), ('root/b/2.jpg', b'two')]
  assert archive.read_members(make_tar(tmp_path / 'x.tar.gz', members)) == expected
  assert archive.read_members(make_tar(tmp_path / 'x.tar', members, 'w')) == expected
  assert archive.read_members(make_zip(tmp_path / 'x.zip', members)) == expected


@pytest.mark.parametrize('name, reason', [
    ('/etc/evil', 'absolute path'),
    ('root/../../evil', 'escapes the archive root'),
    ('../evil', 'escapes the archive root'),
    ('C:/evil', 'absolute path'),
])
def test_refuses_escaping_names_in_tar_and_zip(tmp_path, name, reason):
  tar = make_tar(tmp_path / 'bad.tar.gz', [('ok/1.jpg', b'1'), (name, b'evil')])
  with pytest.raises(ValueError, match=reason):
    archive.read_members(tar)
  zip_path = make_zip(tmp_path / 'bad.zip', [('ok/1.jpg', b'1'), (name, b'evil')])
  with pytest.raises(ValueError, match=reason):
    archive.read_members(zip_path)


@pytest.mark.parametrize('link_type', [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_refuses_tar_links(tmp_path, link_type):
  tar = make_tar(tmp_path / 'link.tar', [('ok/1.jpg', b'1'),
                                         ('ok/2.jpg', link_type, '/etc/passwd')], 'w')
  with pytest.raises(ValueError, match='refusing link member'):
    archive.read_members(tar)


def test_refuses_zip_symlink(tmp_path):
  zip_path = make_zip(tmp_path / 'link.zip', [('ok/1.jpg', b'1')],
                      symlink=('ok/2.jpg', '/etc/passwd'))
  with pytest.raises(ValueError, match='refusing link member'):
    archive.read_members(zip_path)


def test_refuses_special_members(tmp_path):
  tar = make_tar(tmp_path / 'fifo.tar', [('ok/pipe', tarfile.FIFOTYPE, '')], 'w')
  with pytest.raises(ValueError, match='special member'):
    archive.read_members(tar)


def test_damaged_and_foreign_files_get_clear_errors(tmp_path):
  good = make_tar(tmp_path / 'good.tar.gz', [('a/%d.jpg' % i, os.urandom(5000))
                                             for i in range(20)])
  with open(good, 'rb') as f:
    data = f.read()
  damaged = tmp_path / 'damaged.tar.gz'
  damaged.write_bytes(data[:len(data) // 2])
  with pytest.raises(ValueError, match='damaged archive'):
    archive.read_members(str(damaged))
  plain = make_tar(tmp_path / 'plain.tar', [('a/1.jpg', os.urandom(5000))], 'w')
  cut = tmp_path / 'cut.tar'
  with open(plain, 'rb') as f:
    cut.write_bytes(f.read()[:3000])
  with pytest.raises(ValueError, match='damaged archive'):
    archive.read_members(str(cut))
  text = tmp_path / 'notes.txt'
  text.write_text('hello')
  with pytest.raises(ValueError, match='is not a .tar'):
    archive.read_members(str(text))


def test_size_limit(tmp_path):
  tar = make_tar(tmp_path / 'big.tar', [('a/1', b'x' * 100), ('a/2', b'x' * 100)], 'w')
  with pytest.raises(ValueError, match='extract it and pass the folder'):
    archive.read_members(tar, max_bytes=150)
  zip_path = make_zip(tmp_path / 'big.zip', [('a/1', b'x' * 100), ('a/2', b'x' * 100)])
  with pytest.raises(ValueError, match='extract it and pass the folder'):
    archive.read_members(zip_path, max_bytes=150)
