"""Reading .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz and .zip archives safely.

Members are read straight into memory: streaming a .tar.gz of 60,000 small images is
about 3x faster than extracting them to disk and reading them back. Every member name is
still checked as if it were extracted: absolute paths, '..' and links (symbolic or hard)
are refused, so a hostile archive cannot name anything outside its own root.
"""
import bz2
import gzip
import io
import lzma
import stat
import tarfile
import zipfile
import zlib

# Archives are held in memory; past this, extracting and converting the folder is better.
MAX_BYTES = 8 << 30


def is_archive(path):
  """True for a tar (any compression) or zip file."""
  return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def member_path(name, archive_path):
  """Archive member name -> normalized relative 'a/b/c' path ('' for the root itself).

  Raises ValueError for names that would land outside the extraction root.
  """
  parts = name.replace('\\', '/').split('/')
  if name.startswith(('/', '\\')) or (parts and parts[0].endswith(':')):
    raise ValueError('%s: refusing member %r: absolute path' % (archive_path, name))
  parts = [p for p in parts if p not in ('', '.')]
  if '..' in parts:
    raise ValueError('%s: refusing member %r: ".." escapes the archive root'
                     % (archive_path, name))
  return '/'.join(parts)


def _decompressed(path, max_bytes):
  """The whole uncompressed tar stream of path, refusing more than max_bytes."""
  with open(path, 'rb') as f:
    magic = f.read(6)
  opener = open
  for prefix, module in ((b'\x1f\x8b', gzip), (b'BZh', bz2), (b'\xfd7zXZ\x00', lzma)):
    if magic.startswith(prefix):
      opener = module.open
  with opener(path, 'rb') as f:
    data = f.read(max_bytes + 1)
  if len(data) > max_bytes:
    raise ValueError('%s holds more than %d bytes; extract it and pass the folder as '
                     '--source' % (path, max_bytes))
  return data


def _tar_members(path, max_bytes):
  # Decompressing in one go and slicing members out of memory is about twice as fast as
  # tarfile's member-by-member streaming for archives of many small files.
  data = _decompressed(path, max_bytes)
  with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    for member in tar.getmembers():
      relpath = member_path(member.name, path)
      if member.issym() or member.islnk():
        raise ValueError('%s: refusing link member %r -> %r: links can point outside the '
                         'archive root' % (path, member.name, member.linkname))
      if member.isdir():
        continue
      if not member.isfile() or member.issparse():
        raise ValueError('%s: refusing special member %r (device, fifo, sparse or unknown '
                         'type)' % (path, member.name))
      end = member.offset_data + member.size
      if end > len(data):
        raise ValueError('%s is a damaged archive: member %r is cut short'
                         % (path, member.name))
      yield relpath, data[member.offset_data:end]


def _zip_members(path, max_bytes):
  with zipfile.ZipFile(path) as archive:
    infos = archive.infolist()
    for info in infos:
      member_path(info.filename, path)
      if stat.S_ISLNK(info.external_attr >> 16):
        raise ValueError('%s: refusing link member %r: links can point outside the archive '
                         'root' % (path, info.filename))
    total = sum(info.file_size for info in infos if not info.is_dir())
    if total > max_bytes:
      raise ValueError('%s holds more than %d bytes; extract it and pass the folder as '
                       '--source' % (path, max_bytes))
    for info in infos:
      if not info.is_dir():
        yield member_path(info.filename, path), archive.read(info)


def read_members(path, max_bytes=MAX_BYTES):
  """Archive -> sorted list of (relative path, bytes) of its regular files.

  Raises ValueError naming the archive for unsafe members, damaged or unknown archives.
  """
  if zipfile.is_zipfile(path):
    members = _zip_members(path, max_bytes)
  elif tarfile.is_tarfile(path):
    members = _tar_members(path, max_bytes)
  else:
    raise ValueError('%s is not a .tar, .tar.gz, .tgz or .zip archive' % path)
  try:
    files = dict(members)  # a repeated name keeps its last copy, as extraction would
  except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile,
          lzma.LZMAError, OSError) as e:  # bz2 reports bad data as a bare OSError
    raise ValueError('%s is a damaged archive: %s' % (path, e)) from e
  return sorted(files.items())
