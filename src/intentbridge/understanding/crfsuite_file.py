"""Checking a CRFsuite model file before CRFsuite reads it.

CRFsuite follows a model file's offsets and counts without checking them: a truncated
or overwritten ``tagger.crfsuite`` made it read past its buffer and crash the process.
:func:`crfsuite_problem` checks the structure first.
"""

from __future__ import annotations

import struct

# The CRFsuite model file (crfsuite's crf1d_model.c, cqdb.c): a 48-byte little-endian
# header (magic, size, type, version, counts of features, labels and attributes, then
# five offsets), and the chunks those offsets point at, each starting with a 4-byte id
# and its size: FEAT (20-byte features), CQDB (label and attribute names; its header
# holds the number of names and where their index is), LFRF and AFRF (references).
_CRF_HEADER = struct.Struct("<4sI4sIIIIIIIII")
_CRF_CHUNK = struct.Struct("<4sII")  # id, size, number of items
_CQDB_HEADER = struct.Struct("<4sIIIII")  # id, size, flag, byte order, names, index offset
_CRF_FEATURE_SIZE = 20


def crfsuite_problem(model: bytes) -> str | None:
    """What is wrong with ``model`` as a CRFsuite 1st-order CRF file, or None.

    CRFsuite follows the file's offsets and counts without checking them, so a
    truncated or overwritten file crashes the process. This checks them first: the
    magic and model type, the size the header records against the byte count, each
    chunk's id and extent, and that the chunks agree with the header's counts. Damage
    inside the weights or the name tables is not caught here (the checksum that
    :meth:`NluModel.save <intentbridge.understanding.model.NluModel.save>` records is).
    """
    size = len(model)
    if size < _CRF_HEADER.size:
        return f"{size} bytes, shorter than the {_CRF_HEADER.size}-byte header"
    (magic, recorded, kind, _version, _n_features, n_labels, n_attrs, *offsets) = (
        _CRF_HEADER.unpack_from(model)
    )
    if magic != b"lCRF" or kind != b"FOMC":
        return "not a CRFsuite model file (wrong magic bytes)"
    if recorded != size:
        return f"the header records {recorded} bytes but the file has {size} (truncated?)"
    chunks: dict[str, tuple[int, int, int]] = {}
    for name, chunk_id, offset in zip(
        ("features", "labels", "attributes", "label references", "attribute references"),
        (b"FEAT", b"CQDB", b"CQDB", b"LFRF", b"AFRF"),
        offsets,
        strict=True,
    ):
        if not _CRF_HEADER.size <= offset <= size - _CQDB_HEADER.size:
            return f"the {name} offset {offset} is outside the file"
        found_id, length, count = _CRF_CHUNK.unpack_from(model, offset)
        if found_id != chunk_id or length < _CRF_CHUNK.size or offset + length > size:
            return f"the {name} chunk at {offset} is damaged"
        chunks[name] = (offset, length, count)
    _, length, count = chunks["features"]
    if _CRF_CHUNK.size + count * _CRF_FEATURE_SIZE != length:
        return "the features chunk's size and count disagree"
    for name, expected in (("labels", n_labels), ("attributes", n_attrs)):
        offset, length, _ = chunks[name]
        names, index = _CQDB_HEADER.unpack_from(model, offset)[4:]
        if names != expected or index + 4 * names > length:
            return f"the {name} table does not match the header's count"
    for name, least in (("label references", n_labels), ("attribute references", n_attrs)):
        _, length, count = chunks[name]
        if count < least or _CRF_CHUNK.size + 4 * count > length:
            return f"the {name} chunk does not match the header's count"
    return None
