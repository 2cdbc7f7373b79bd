using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace ModelRouting.Tests.EndToEnd.Support;

/// <summary>Reads server-sent events (<c>data:</c> lines) from a response stream as they arrive.</summary>
public sealed class SseReader : IDisposable
{
    private readonly StreamReader _reader;

    public SseReader(Stream stream)
    {
        _reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 1024, leaveOpen: true);
    }

    /// <summary>
    /// Returns the data of the next event (its <c>data:</c> lines joined by newlines), or null at the end of the
    /// stream. Comment lines and other fields are skipped.
    /// </summary>
    public async Task<string?> ReadDataAsync(CancellationToken cancellationToken = default)
    {
        StringBuilder? data = null;
        while (true)
        {
            var line = await _reader.ReadLineAsync(cancellationToken);
            if (line is null)
            {
                return data?.ToString();
            }

            if (line.Length == 0)
            {
                if (data is not null)
                {
                    return data.ToString();
                }

                continue;
            }

            if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                var value = line.AsSpan(5);
                if (value.Length > 0 && value[0] == ' ')
                {
                    value = value[1..];
                }

                if (data is null)
                {
                    data = new StringBuilder();
                }
                else
                {
                    data.Append('\n');
                }

                data.Append(value);
            }
        }
    }

    /// <summary>Reads every remaining event's data up to the end of the stream.</summary>
    public async Task<List<string>> ReadAllAsync(CancellationToken cancellationToken = default)
    {
        var all = new List<string>();
        while (await ReadDataAsync(cancellationToken) is { } data)
        {
            all.Add(data);
        }

        return all;
    }

    public void Dispose() => _reader.Dispose();
}

/// <summary>Helpers for test backends that stream and for streaming clients.</summary>
public static class StreamingHelpers
{
    /// <summary>A bound for anything a test awaits that should happen promptly.</summary>
    public static readonly TimeSpan Prompt = TimeSpan.FromSeconds(5);

    /// <summary>A bound for whole multi-request scenarios.</summary>
    public static readonly TimeSpan Scenario = TimeSpan.FromSeconds(60);

    /// <summary>Starts a text/event-stream response (headers are sent by the first flush).</summary>
    public static void StartEventStream(HttpResponse response)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
    }

    /// <summary>Writes one SSE event (<c>data: …</c> and a blank line) and flushes it to the wire.</summary>
    public static async Task WriteEventAsync(HttpResponse response, string data, CancellationToken cancellationToken)
    {
        await response.WriteAsync("data: " + data + "\n\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    /// <summary>A POST of a JSON body to <paramref name="path"/> asking for a stream.</summary>
    public static HttpRequestMessage StreamingPost(string path, string json) => new(HttpMethod.Post, path)
    {
        Content = new StringContent(json, Encoding.UTF8, "application/json"),
    };

    /// <summary>A chat body naming <paramref name="model"/> with one user message and <c>"stream":true</c>.</summary>
    public static string StreamingChatBody(string model, string userText) =>
        new JsonObject
        {
            ["model"] = model,
            ["stream"] = true,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = userText }),
        }.ToJsonString();

    /// <summary>Returns the text of the last user message of a chat body.</summary>
    public static string LastUserText(RecordedRequest request) =>
        JsonNode.Parse(request.Body)?["messages"]?.AsArray()[^1]?["content"]?.GetValue<string>() ?? "";

    /// <summary>A loopback URL on which nothing listens (a port taken from the OS and released again).</summary>
    public static string DeadLoopbackUrl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }

    /// <summary>
    /// A responder for <see cref="TestBackend"/> that answers chat completions as an OpenAI server does: a
    /// <c>chat.completion</c> JSON object, or with <c>"stream":true</c> a sequence of
    /// <c>chat.completion.chunk</c> events ending in <c>data: [DONE]</c>. The reply is
    /// "<paramref name="prefix"/> model=&lt;model received&gt;", streamed one word per chunk.
    /// </summary>
    public static Func<HttpContext, RecordedRequest, Task> OpenAIChatResponder(string prefix) => async (context, recorded) =>
    {
        var body = JsonNode.Parse(recorded.Body) as JsonObject ?? [];
        var model = body["model"]?.GetValue<string>() ?? "(none)";
        var reply = $"{prefix} model={model}";
        const string id = "chatcmpl-e2e";
        const long created = 1_700_000_000;
        if (body["stream"]?.GetValueKind() == JsonValueKind.True)
        {
            StartEventStream(context.Response);
            var words = reply.Split(' ');
            for (var i = 0; i < words.Length; i++)
            {
                var delta = i == 0
                    ? new JsonObject { ["role"] = "assistant", ["content"] = words[i] }
                    : new JsonObject { ["content"] = " " + words[i] };
                await WriteEventAsync(context.Response, ChatChunk(id, created, model, delta, null).ToJsonString(), context.RequestAborted);
            }

            await WriteEventAsync(context.Response, ChatChunk(id, created, model, [], "stop").ToJsonString(), context.RequestAborted);
            if (body["stream_options"]?["include_usage"]?.GetValueKind() == JsonValueKind.True)
            {
                // As vLLM and OpenAI do: a final chunk with no choices and the usage (3 prompt tokens, one per word).
                var usage = ChatChunk(id, created, model, [], null);
                usage["choices"] = new JsonArray();
                usage["usage"] = new JsonObject { ["prompt_tokens"] = 3, ["completion_tokens"] = words.Length, ["total_tokens"] = 3 + words.Length };
                await WriteEventAsync(context.Response, usage.ToJsonString(), context.RequestAborted);
            }

            await WriteEventAsync(context.Response, "[DONE]", context.RequestAborted);
            return;
        }

        await context.Response.WriteAsJsonAsync(new JsonObject
        {
            ["id"] = id,
            ["object"] = "chat.completion",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply },
                ["logprobs"] = null,
                ["finish_reason"] = "stop",
            }),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 3, ["completion_tokens"] = 4, ["total_tokens"] = 7 },
        }, context.RequestAborted);
    };

    private static JsonObject ChatChunk(string id, long created, string model, JsonObject delta, string? finish) => new()
    {
        ["id"] = id,
        ["object"] = "chat.completion.chunk",
        ["created"] = created,
        ["model"] = model,
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish }),
    };
}
