using System.Buffers;

// The load benchmark's backend: reads every request body to the end (as a model server must) and answers a
// small chat completion; a body with "stream":true gets an SSE stream whose first event is sent at once.
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var app = builder.Build();

var completion = """{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"""u8.ToArray();
var chunk = """data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}"""u8.ToArray();
var streamFlag = "\"stream\":true"u8.ToArray();

app.Run(async context =>
{
    var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
    var streaming = false;
    try
    {
        int read;
        var carry = 0;
        while ((read = await context.Request.Body.ReadAsync(buffer.AsMemory(carry), context.RequestAborted)) > 0)
        {
            var window = buffer.AsSpan(0, carry + read);
            streaming |= window.IndexOf(streamFlag) >= 0;
            carry = Math.Min(streamFlag.Length - 1, window.Length);
            window[^carry..].CopyTo(buffer);
        }
    }
    finally
    {
        ArrayPool<byte>.Shared.Return(buffer);
    }

    if (!streaming)
    {
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = completion.Length;
        await context.Response.Body.WriteAsync(completion, context.RequestAborted);
        return;
    }

    context.Response.ContentType = "text/event-stream";
    for (var i = 0; i < 5; i++)
    {
        await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
        await context.Response.Body.WriteAsync("\n\n"u8.ToArray(), context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        await Task.Delay(i == 0 ? 50 : 5, context.RequestAborted);
    }

    await context.Response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
});

app.Run();
