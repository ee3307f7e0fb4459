// RabbitMQ's instrumentation for GET /metrics (metrics/engine-metrics.ts declares the series): publishes
// by confirm mode and outcome, deliveries by how they were settled, and errors.
import { ConsumerStatus, type Connection, type ConsumerHandler } from 'rabbitmq-client';
import { countEngineError, rabbitDeliveries, rabbitPublishes } from '../metrics/engine-metrics.js';

/** Counts publishes of every publisher, and the settlement of every delivery of every consumer, the connection creates. */
export function instrumentRabbit(rabbit: Connection): void {
  rabbit.on('error', () => countEngineError('rabbitmq', 'connection'));
  const createPublisher = rabbit.createPublisher.bind(rabbit);
  rabbit.createPublisher = (props) => {
    const publisher = createPublisher(props);
    const confirm = props?.confirm ? 'true' : 'false';
    const send = publisher.send.bind(publisher) as (envelope: unknown, body: unknown) => Promise<void>;
    publisher.send = ((envelope: unknown, body: unknown) =>
      send(envelope, body).then(
        () => {
          rabbitPublishes.inc({ confirm, outcome: 'ok' });
        },
        (err: unknown) => {
          rabbitPublishes.inc({ confirm, outcome: 'error' });
          countEngineError('rabbitmq', 'operation');
          throw err;
        },
      )) as typeof publisher.send;
    return publisher;
  };
  const createConsumer = rabbit.createConsumer.bind(rabbit);
  rabbit.createConsumer = (props, cb) => {
    const counted: ConsumerHandler = async (msg, reply) => {
      let status: ConsumerStatus | void;
      try {
        status = await cb(msg, reply);
      } catch (err) {
        rabbitDeliveries.inc({ outcome: 'error' });
        throw err;
      }
      rabbitDeliveries.inc({ outcome: status === ConsumerStatus.REQUEUE ? 'requeue' : status === ConsumerStatus.DROP ? 'drop' : 'ack' });
      return status;
    };
    return createConsumer(props, counted);
  };
}
