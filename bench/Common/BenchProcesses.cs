using System.Net;
using System.Net.Sockets;

namespace Bench.Common;

/// <summary>What the benchmark programs that start gateway processes share (linked into each, not a library).</summary>
internal static class BenchProcesses
{
    /// <summary>A loopback port free at the moment of asking.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Waits until the gateway behind <paramref name="client"/> answers <c>/healthz</c> (about 30 s at most).</summary>
    public static async Task WaitHealthyAsync(HttpClient client)
    {
        for (var i = 0; ; i++)
        {
            try
            {
                using var probe = await client.GetAsync("/healthz");
                if (probe.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (i < 300)
            {
            }

            await Task.Delay(100);
        }
    }
}
