// OpenTelemetry for the example: the plugin's metrics (and anything else the app
// records) exposed for Prometheus by the OpenTelemetry Prometheus exporter. Imported
// first by server.ts: the SDK must be registered before the plugin takes its meter.
import { metrics } from '@opentelemetry/api'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import type { FastifyInstance } from 'fastify'

// No server of its own: Fastify serves the exposition at /metrics.
const prometheus = new PrometheusExporter({ preventServerStart: true })
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [prometheus] }))

/** `GET /metrics` in Prometheus text format, open like /health (put it behind your network's rules). */
export function metricsRoute (app: FastifyInstance): void {
  app.get('/metrics', { config: { auth: false } }, (request, reply) => {
    reply.hijack()
    prometheus.getMetricsRequestHandler(request.raw, reply.raw)
  })
}
