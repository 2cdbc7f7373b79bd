using System.Text.Json;
using ModelRouting.Configuration;

namespace ModelRouting.Admin;

/// <summary>
/// Persists the <see cref="RuntimeOverlay"/> as a JSON file, written atomically: a temporary file beside it
/// is written and flushed to disk, then moved over the state file, so a crash leaves the old or the new
/// state, never half of one.
/// </summary>
internal sealed class RuntimeStateStore(string? path)
{
    /// <summary>Gets the state file's full path, or null when runtime changes are not persisted.</summary>
    public string? Path { get; } = path is null ? null : System.IO.Path.GetFullPath(path);

    /// <summary>Loads the overlay; an absent file is an empty overlay.</summary>
    /// <exception cref="ModelRoutingConfigurationException">The file exists but cannot be read or parsed.</exception>
    public RuntimeOverlay Load()
    {
        if (Path is null || !File.Exists(Path))
        {
            return new RuntimeOverlay();
        }

        try
        {
            return RuntimeOverlay.Parse(File.ReadAllBytes(Path));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new ModelRoutingConfigurationException(
                $"The runtime state file '{Path}' (ModelRouting:Admin:StateFile) could not be read: {e.Message} "
                + "Fix or remove the file; it holds the changes made through the admin API.", e);
        }
    }

    /// <summary>Writes the overlay atomically. Does nothing when runtime changes are not persisted.</summary>
    /// <exception cref="RuntimeStateNotSavedException">The file could not be written (read-only folder, disk full…).</exception>
    public void Save(RuntimeOverlay overlay)
    {
        if (Path is null)
        {
            return;
        }

        var directory = System.IO.Path.GetDirectoryName(Path)!;
        var temp = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(Path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(directory);
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.WriteThrough))
            {
                JsonSerializer.Serialize(stream, overlay, RuntimeOverlay.Json);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, Path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new RuntimeStateNotSavedException(Path, e);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private static void TryDelete(string temp)
    {
        try
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The temporary file is named uniquely and hidden; a leftover one is harmless.
        }
    }
}
