namespace DaxFs;

/// <summary>DaxFile -- an open regular file: reads and writes go straight between the caller's buffer and the
/// media. Holds a pin, so an unlinked file lives until every DaxFile on it is disposed.</summary>
public sealed class DaxFile : IDisposable
{
    private int _disposed;

    internal DaxFile(DaxVolume volume, ulong ino)
    {
        Volume = volume;
        Ino = ino;
        volume.Pin(ino);
    }

    /// <summary>The volume.</summary>
    public DaxVolume Volume { get; }

    /// <summary>The inode number.</summary>
    public ulong Ino { get; }

    /// <summary>The file's size in bytes.</summary>
    public long Length => Volume.GetAttributes(Ino).Size;

    /// <summary>stat(2).</summary>
    public InodeAttributes GetAttributes() => Volume.GetAttributes(Ino);

    /// <summary>pread: bytes read (0 at the end).</summary>
    public int Read(long offset, Span<byte> buffer) => Volume.Read(Ino, offset, buffer);

    /// <summary>pwrite: atomic, durable on return on pmem.</summary>
    public void Write(long offset, ReadOnlySpan<byte> data) => Volume.Write(Ino, offset, data);

    /// <summary>Appends at the current end of file.</summary>
    public void Append(ReadOnlySpan<byte> data) => Volume.Write(Ino, Length, data);

    /// <summary>ftruncate.</summary>
    public void SetLength(long length) => Volume.SetAttributes(Ino, new SetAttributes { Size = length });

    /// <summary>fallocate.</summary>
    public void Fallocate(FallocateMode mode, long offset, long length) => Volume.Fallocate(Ino, mode, offset, length);

    /// <summary>fsync (fdatasync with <paramref name="dataOnly"/>).</summary>
    public void Flush(bool dataOnly = false) => Volume.Fsync(Ino, dataOnly);

    /// <summary>Maps [offset, offset+length) into memory: loads and stores reach the media directly. A writable
    /// mapping has every block under it allocated and zeroed before this returns (and grows the file to cover it); a
    /// read mapping must lie inside the file. <see cref="MapMode.Sync"/> pins the block map while the mapping lives
    /// (truncate, punch and zero range under it fail with EBUSY) and needs a pmem device; <see cref="MapMode.Async"/>
    /// stores become durable at <see cref="Flush"/> or unmap. Runs of 2 MiB whose file and device offsets are both
    /// 2 MiB-aligned are mapped with 2 MiB pages where the backing has them, unless <paramref name="pages"/> asks for
    /// 4 KiB pages only.</summary>
    public DaxMapping Map(long offset, long length, MapAccess access = MapAccess.ReadWrite, MapMode mode = MapMode.Sync,
        MapPages pages = MapPages.Largest) =>
        Volume.Map(Ino, offset, length, access, mode, pages);

    /// <summary>A <see cref="Stream"/> over the file, starting at position 0.</summary>
    public Stream AsStream() => new DaxFileStream(this);

    /// <summary>Drops the pin.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
            Volume.Unpin(Ino);
    }
}

/// <summary>DaxFileStream -- System.IO.Stream over a <see cref="DaxFile"/> (seekable, readable, writable).</summary>
public sealed class DaxFileStream : Stream
{
    private readonly DaxFile _file;
    private long _position;

    /// <summary>A stream over <paramref name="file"/>; disposing the stream does not dispose the file.</summary>
    public DaxFileStream(DaxFile file) => _file = file;

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanSeek => true;

    /// <inheritdoc/>
    public override bool CanWrite => true;

    /// <inheritdoc/>
    public override long Length => _file.Length;

    /// <inheritdoc/>
    public override long Position
    {
        get => _position;
        set => _position = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), "position cannot be negative");
    }

    /// <inheritdoc/>
    public override void Flush() => _file.Flush();

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        int n = _file.Read(_position, buffer);
        _position += n;
        return n;
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _file.Write(_position, buffer);
        _position += buffer.Length;
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin)
    {
        long p = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => _file.Length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        Position = p;
        return p;
    }

    /// <inheritdoc/>
    public override void SetLength(long value) => _file.SetLength(value);
}
