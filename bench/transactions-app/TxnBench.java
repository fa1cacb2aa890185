import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * The Java client side of bench/transactions.py, run once per workload
 * against one broker (Gregor or Apache Kafka, the same jars for both).
 *
 * Usage: TxnBench produce|consume <client properties file> <topic> [name=value...]
 *
 * produce: a transactional KafkaProducer (its properties from the file, which
 * names the transactional.id) writes records of record.bytes bytes, without
 * keys, round-robin over the topic's partitions, in transactions one after
 * the other. Either timed (interval.ms, warmup.s, seconds: each transaction
 * sends continuously for interval.ms and then commits; the transactions
 * begun in the first warmup.s are not counted; transactions begin until
 * warmup.s + seconds have passed) or counted (transactions, records.per.txn,
 * abort.every: transaction i is aborted when i % abort.every ==
 * abort.every - 1, the others committed). Each transaction ends with flush()
 * and then commitTransaction() or abortTransaction(), timed: commit_ms is
 * the two together (what commitTransaction() alone takes: it waits for
 * every record sent before it ends the transaction), end_ms and abort_ms
 * the call after the flush.
 *
 * consume: a KafkaConsumer (its properties from the file, isolation.level
 * among them; no group: the partitions are assigned) reads the topic from
 * the beginning until its position in every partition reaches the end
 * offset it was given at the start (the last stable offset under
 * read_committed), counting records and their value bytes.
 *
 * Prints one JSON object on stdout; on failure, "ERROR <exception>: <message>"
 * (and its causes) on stderr and exits 1. Times come from System.nanoTime.
 */
public final class TxnBench {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(Path.of(args[1]))) {
            props.load(in);
        }
        Map<String, String> opts = new HashMap<>();
        for (int i = 3; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            opts.put(kv[0], kv[1]);
        }
        try {
            String json;
            switch (args[0]) {
                case "produce" -> json = produce(props, args[2], opts);
                case "consume" -> json = consume(props, args[2]);
                default -> throw new IllegalArgumentException("unknown mode " + args[0]);
            }
            System.out.println(json);
        } catch (Exception e) {
            for (Throwable t = e; t != null; t = t.getCause()) {
                System.err.println((t == e ? "ERROR " : "CAUSED BY ") + t.getClass().getSimpleName() + ": "
                    + t.getMessage());
            }
            System.exit(1);
        }
    }

    private static long option(Map<String, String> opts, String name, long otherwise) {
        return opts.containsKey(name) ? Long.parseLong(opts.get(name)) : otherwise;
    }

    static String produce(Properties props, String topic, Map<String, String> opts) {
        props.put("key.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer");
        props.put("value.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer");
        int recordBytes = (int) option(opts, "record.bytes", 1024);
        byte[] value = new byte[recordBytes];
        new Random(42).nextBytes(value);
        boolean timed = opts.containsKey("interval.ms");
        long intervalNs = option(opts, "interval.ms", 0) * 1_000_000L;
        long warmupNs = option(opts, "warmup.s", 0) * 1_000_000_000L;
        long measureNs = option(opts, "seconds", 0) * 1_000_000_000L;
        long transactions = option(opts, "transactions", Long.MAX_VALUE);
        long perTxn = option(opts, "records.per.txn", 0);
        long abortEvery = option(opts, "abort.every", 0);

        List<Long> commitNs = new ArrayList<>();
        List<Long> endNs = new ArrayList<>();
        List<Long> abortNs = new ArrayList<>();
        long committedRecords = 0;
        long abortedRecords = 0;
        long committed = 0;
        long aborted = 0;
        long unmeasured = 0;
        long unmeasuredRecords = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            long initStart = System.nanoTime();
            producer.initTransactions();
            long initNs = System.nanoTime() - initStart;
            int partitions = producer.partitionsFor(topic).size();

            long started = System.nanoTime();
            long measureFrom = started + warmupNs;
            long end = measureFrom + measureNs;
            long firstMeasured = -1;
            long lastMeasured = -1;
            long sent = 0;
            for (long txn = 0; txn < transactions; txn++) {
                long begun = System.nanoTime();
                if (timed && begun >= end) {
                    break;
                }
                producer.beginTransaction();
                long records = 0;
                long until = begun + intervalNs;
                do {
                    producer.send(new ProducerRecord<>(topic, (int) (sent++ % partitions), null, value));
                    records++;
                } while (timed ? System.nanoTime() < until : records < perTxn);
                boolean abort = abortEvery > 0 && txn % abortEvery == abortEvery - 1;
                // commitTransaction() first waits until every record sent is
                // acknowledged, then ends the transaction (EndTxn); flush()
                // before it does the same first part, timed apart. Before
                // abortTransaction() it puts the aborted records in the log
                // (an abort drops what is not sent yet), as when an
                // application aborts after its sends went out.
                long ending = System.nanoTime();
                producer.flush();
                long flushed = System.nanoTime();
                if (abort) {
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                }
                long ended = System.nanoTime();
                if (begun < measureFrom) {
                    unmeasured++;
                    unmeasuredRecords += records;
                    continue;
                }
                if (firstMeasured < 0) {
                    firstMeasured = begun;
                }
                lastMeasured = ended;
                if (abort) {
                    aborted++;
                    abortedRecords += records;
                    abortNs.add(ended - flushed);
                } else {
                    committed++;
                    committedRecords += records;
                    commitNs.add(ended - ending);
                    endNs.add(ended - flushed);
                }
            }
            double seconds = firstMeasured < 0 ? 0 : (lastMeasured - firstMeasured) / 1e9;
            return "{\"partitions\": " + partitions + ", \"init_seconds\": " + initNs / 1e9
                + ", \"seconds\": " + seconds + ", \"record_bytes\": " + recordBytes
                + ", \"committed_transactions\": " + committed + ", \"aborted_transactions\": " + aborted
                + ", \"unmeasured_transactions\": " + unmeasured + ", \"unmeasured_records\": " + unmeasuredRecords
                + ", \"committed_records\": " + committedRecords + ", \"aborted_records\": " + abortedRecords
                + ", \"commit_ms\": " + millis(commitNs) + ", \"end_ms\": " + millis(endNs)
                + ", \"abort_ms\": " + millis(abortNs) + "}";
        }
    }

    private static String millis(List<Long> nanos) {
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < nanos.size(); i++) {
            out.append(i == 0 ? "" : ", ").append(String.format("%.3f", nanos.get(i) / 1e6));
        }
        return out.append("]").toString();
    }

    static String consume(Properties props, String topic) {
        props.put("key.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.ByteArrayDeserializer");
        props.put("enable.auto.commit", "false");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic)) {
                partitions.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
            long records = 0;
            long bytes = 0;
            long polls = 0;
            long started = System.nanoTime();
            List<TopicPartition> left = new ArrayList<>(partitions);
            while (!left.isEmpty()) {
                ConsumerRecords<byte[], byte[]> got = consumer.poll(Duration.ofMillis(500));
                polls++;
                for (ConsumerRecord<byte[], byte[]> r : got) {
                    records++;
                    bytes += r.serializedValueSize();
                }
                left.removeIf(p -> consumer.position(p) >= ends.get(p));
            }
            double seconds = (System.nanoTime() - started) / 1e9;
            long endSum = ends.values().stream().mapToLong(Long::longValue).sum();
            return "{\"records\": " + records + ", \"bytes\": " + bytes + ", \"seconds\": " + seconds
                + ", \"polls\": " + polls + ", \"end_offsets\": " + endSum + "}";
        }
    }
}
