using Microsoft.Extensions.Hosting;
using ModelRouting.Configuration;
using StackExchange.Redis;

namespace ModelRouting.SharedState;

/// <summary>
/// Keeps this replica on the shared overlay in Redis (SPEC §16): a change notice (pub/sub) or Redis coming back
/// triggers a check at once, and the version is checked every <see cref="RedisOptions.PollInterval"/> anyway,
/// since pub/sub delivers at most once. Checks run one at a time on this service's loop, off the request path.
/// </summary>
internal sealed class SharedOverlaySync(ModelRegistrySource source, SharedOverlayStore store) : BackgroundService
{
    private readonly SemaphoreSlim _wake = new(0);
    private bool _subscribed;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!store.Enabled)
        {
            return;
        }

        var multiplexer = store.Connection.Multiplexer!;
        multiplexer.ConnectionRestored += (_, _) => Wake();
        var interval = store.Connection.Options.PollInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            if (!_subscribed)
            {
                await SubscribeAsync(multiplexer);
            }

            try
            {
                // On the thread pool: after an await on Redis this loop can be running on the multiplexer's own reader
                // thread, where a synchronous Redis call waits for itself until it times out.
                await Task.Run(source.SynchronizeShared, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (SharedStateUnavailableException)
            {
                // Logged once by the connection; the next notice, reconnection or tick tries again.
            }

            try
            {
                await _wake.WaitAsync(interval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            while (_wake.CurrentCount > 0)
            {
                _wake.Wait(0, CancellationToken.None);
            }
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }

    private async Task SubscribeAsync(ConnectionMultiplexer multiplexer)
    {
        try
        {
            await multiplexer.GetSubscriber().SubscribeAsync(store.Channel, (_, message) =>
            {
                if (SharedOverlayStore.ParseNotice(message) != source.SharedMark)
                {
                    Wake();
                }
            });
            _subscribed = true;
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            // Not connected yet: the next turn of the loop subscribes.
        }
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
