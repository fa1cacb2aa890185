import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A transactional Java producer (kafka-clients) driven line by line from
 * stdin by tests/test_transactions.py, so a test can stop it anywhere in a
 * transaction, fence it, kill it or let it time out.
 *
 * Usage: TxnClient <producer properties file>. The properties name at least
 * bootstrap.servers and transactional.id; keys and values are strings.
 *
 * Commands, one a line; each is answered with one line on stdout that
 * starts with "@@ " (other lines on stdout are the client's logging):
 *   init                          initTransactions()
 *   begin                         beginTransaction()
 *   send TOPIC PARTITION VALUE    send() and wait for its acknowledgement: "OK <offset>"
 *   offsets GROUP TOPIC PARTITION OFFSET
 *                                 sendOffsetsToTransaction() of one partition's offset
 *   commit                        commitTransaction()
 *   abort                         abortTransaction()
 *   close                         close() and exit
 * An answer is "@@ OK ..." or "@@ ERR <exception class> <message>", the class
 * being the innermost cause of an ExecutionException and otherwise the
 * exception thrown (e.g. ProducerFencedException, InvalidProducerEpochException,
 * TransactionalIdAuthorizationException).
 */
public final class TxnClient {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (InputStream in = Files.newInputStream(Path.of(args[0]))) {
            props.load(in);
        }
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        KafkaProducer<String, String> producer = new KafkaProducer<>(props);
        answer("OK ready");
        BufferedReader commands = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = commands.readLine()) != null) {
            String[] words = line.trim().split(" ", 4);
            try {
                switch (words[0]) {
                    case "init" -> {
                        producer.initTransactions();
                        answer("OK");
                    }
                    case "begin" -> {
                        producer.beginTransaction();
                        answer("OK");
                    }
                    case "send" -> {
                        Future<RecordMetadata> sent = producer.send(
                            new ProducerRecord<>(words[1], Integer.parseInt(words[2]), null, words[3]));
                        answer("OK " + sent.get().offset());
                    }
                    case "offsets" -> {
                        String[] more = words[3].split(" ");
                        producer.sendOffsetsToTransaction(
                            Map.of(new TopicPartition(words[2], Integer.parseInt(more[0])),
                                   new OffsetAndMetadata(Long.parseLong(more[1]))),
                            new ConsumerGroupMetadata(words[1]));
                        answer("OK");
                    }
                    case "commit" -> {
                        producer.commitTransaction();
                        answer("OK");
                    }
                    case "abort" -> {
                        producer.abortTransaction();
                        answer("OK");
                    }
                    case "close" -> {
                        producer.close(Duration.ofSeconds(10));
                        answer("OK");
                        return;
                    }
                    default -> answer("ERR UnknownCommand " + line);
                }
            } catch (ExecutionException e) {
                Throwable cause = e;
                while (cause.getCause() != null && cause != cause.getCause()) {
                    cause = cause.getCause();
                }
                answer("ERR " + cause.getClass().getSimpleName() + " " + oneLine(cause.getMessage()));
            } catch (Exception e) {
                answer("ERR " + e.getClass().getSimpleName() + " " + oneLine(e.getMessage())
                       + (e.getCause() == null ? "" : " (cause: " + e.getCause().getClass().getSimpleName() + ")"));
            }
        }
    }

    private static String oneLine(String s) {
        return s == null ? "" : s.replace('\n', ' ');
    }

    private static void answer(String s) {
        System.out.println("@@ " + s);
        System.out.flush();
    }
}
