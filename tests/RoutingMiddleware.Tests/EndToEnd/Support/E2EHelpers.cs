using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ModelRouting.Tests.EndToEnd.Support;

/// <summary>An OpenAI error body as the gateway sent it.</summary>
internal sealed record OpenAIErrorBody(string? Message, string? Type, string? Code, JsonElement Param);

/// <summary>Small helpers shared by the end-to-end tests.</summary>
internal static class E2EHelpers
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);
    public static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Returns a loopback port nothing listens on: bound once to find it, then released.</summary>
    public static int ClosedLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>POSTs raw bytes as application/json; chunked (no Content-Length) when asked, with an optional Content-Encoding.</summary>
    /// <remarks>With <paramref name="maxChunk"/>, a chunked body is sent in chunks of at most that many bytes.</remarks>
    public static Task<HttpResponseMessage> PostBytesAsync(this TestGateway gateway, string path, byte[] body, bool chunked = false, string? contentEncoding = null, int maxChunk = int.MaxValue)
    {
        HttpContent content = chunked
            ? new StreamContent(new NonSeekableStream(body, maxChunk))
            : new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (contentEncoding is not null)
        {
            content.Headers.ContentEncoding.Add(contentEncoding);
        }

        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (chunked)
        {
            request.Headers.TransferEncodingChunked = true;
        }

        return gateway.Client.SendAsync(request);
    }

    /// <summary>
    /// Asserts an OpenAI-shaped error (SPEC §9): the status, Content-Type application/json, and an
    /// <c>error</c> object with message, type, param and code; returns it.
    /// </summary>
    public static async Task<OpenAIErrorBody> AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string type, string code)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status} {code}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(text);
        var error = doc.RootElement.GetProperty("error");
        Assert.True(error.TryGetProperty("param", out var param), "error.param is missing: " + text);
        var body = new OpenAIErrorBody(
            error.GetProperty("message").GetString(),
            error.GetProperty("type").GetString(),
            error.GetProperty("code").GetString(),
            param.Clone());
        Assert.Equal(type, body.Type);
        Assert.Equal(code, body.Code);
        Assert.False(string.IsNullOrWhiteSpace(body.Message));
        return body;
    }

    /// <summary>Polls <paramref name="probe"/> every 100 ms until <paramref name="done"/> holds, up to 10 s; returns the last value.</summary>
    public static async Task<T> PollAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what)
    {
        var deadline = DateTime.UtcNow + PollTimeout;
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {PollTimeout.TotalSeconds} s waiting for {what}; last value: {value}");
            }

            await Task.Delay(PollInterval);
        }
    }

    /// <summary>POSTs a chat request for <paramref name="model"/> and returns the status code.</summary>
    public static async Task<HttpStatusCode> ChatStatusAsync(this TestGateway gateway, string model)
    {
        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat(model));
        return response.StatusCode;
    }

    /// <summary>A small chat body naming <paramref name="model"/>.</summary>
    public static string Chat(string model) =>
        "{\"model\":" + JsonSerializer.Serialize(model) + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

    /// <summary>An endpoint entry with an explicit BaseModel (and optionally an adapter).</summary>
    public static JsonObject Endpoint(string id, string cluster, string baseModel, string? adapter = null, int? maxContext = null, string? status = null, bool isDefault = false, params string[] aliases)
    {
        var node = TestGateway.Endpoint(id, cluster, maxContext, isDefault, status, upstream: null, adapter, aliases);
        node["BaseModel"] = baseModel;
        return node;
    }

    /// <summary>
    /// Asserts that <paramref name="received"/> is <paramref name="sent"/> with exactly the JSON token
    /// <paramref name="sentModelToken"/> replaced by a JSON string whose value is <paramref name="expectedModel"/>.
    /// </summary>
    public static void AssertOnlyModelReplaced(byte[] sent, byte[] received, string sentModelToken, string expectedModel)
    {
        var token = Encoding.UTF8.GetBytes(sentModelToken);
        var at = sent.AsSpan().IndexOf(token);
        Assert.True(at >= 0, "the sent body does not contain " + sentModelToken);
        Assert.True(sent.AsSpan(at + token.Length).IndexOf(token) < 0, "the token appears twice in the sent body");
        var suffixLength = sent.Length - at - token.Length;
        Assert.True(received.Length >= at + suffixLength, "the forwarded body is too short: " + Encoding.UTF8.GetString(received));
        Assert.True(sent.AsSpan(0, at).SequenceEqual(received.AsSpan(0, at)), "the bytes before model differ: " + Encoding.UTF8.GetString(received));
        Assert.True(
            sent.AsSpan(at + token.Length).SequenceEqual(received.AsSpan(received.Length - suffixLength)),
            "the bytes after model differ: " + Encoding.UTF8.GetString(received));
        var middle = received.AsSpan(at, received.Length - suffixLength - at);
        var reader = new Utf8JsonReader(middle);
        Assert.True(reader.Read());
        Assert.Equal(JsonTokenType.String, reader.TokenType);
        Assert.Equal(expectedModel, reader.GetString());
        Assert.Equal(middle.Length, (int)reader.BytesConsumed);
    }

    /// <summary>Adds a provider that records every log message of the gateway from now on.</summary>
    public static LogCapture CaptureLogs(this TestGateway gateway)
    {
        var capture = new LogCapture();
        gateway.Services.GetRequiredService<ILoggerFactory>().AddProvider(capture);
        return capture;
    }

    /// <summary>A temporary directory removed on dispose.</summary>
    public static TempDirectory TempDir() => new();
}

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gateway-e2e-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, string content)
    {
        var file = File(name);
        System.IO.File.WriteAllText(file, content);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Records log entries (level, event name, message).</summary>
internal sealed class LogCapture : ILoggerProvider
{
    public ConcurrentQueue<(LogLevel Level, string? EventName, string Message)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new CaptureLogger(this);

    public void Dispose()
    {
    }

    private sealed class CaptureLogger(LogCapture owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue((logLevel, eventId.Name, formatter(state, exception) + (exception is null ? "" : " " + exception)));
    }
}

/// <summary>A read-only stream that cannot seek, so HttpClient sends it chunked; each read returns at most <c>maxRead</c> bytes.</summary>
internal sealed class NonSeekableStream(byte[] data, int maxRead = int.MaxValue) : Stream
{
    private readonly MemoryStream _inner = new(data, writable: false);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, maxRead));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _inner.ReadAsync(buffer[..Math.Min(buffer.Length, maxRead)], cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.ReadAsync(buffer, offset, Math.Min(count, maxRead), cancellationToken);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
