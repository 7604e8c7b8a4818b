package clusters

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	kindlog "sigs.k8s.io/kind/pkg/log"
)

// WriterLogger adapts an io.Writer (a file, GinkgoWriter) to kind's levelled
// logger: messages up to Verbosity are written, one per line, prefixed with
// the cluster they concern.
type WriterLogger struct {
	W         io.Writer
	Prefix    string
	Verbosity kindlog.Level
	// start is when the logger was made (a cluster's creation began): each
	// line says how long after it, so a slow kind step shows in the log.
	start time.Time
	mu    *sync.Mutex
}

// NewWriterLogger returns a logger writing to w.
func NewWriterLogger(w io.Writer, prefix string, verbosity kindlog.Level) *WriterLogger {
	return &WriterLogger{W: w, Prefix: prefix, Verbosity: verbosity, start: time.Now(), mu: &sync.Mutex{}}
}

func (l *WriterLogger) write(kind, msg string) {
	if l.W == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.W, "%s+%4.0fs %s%s\n", l.Prefix, time.Since(l.start).Seconds(), kind, strings.TrimRight(msg, "\n"))
}

func (l *WriterLogger) Warn(message string)               { l.write("WARN ", message) }
func (l *WriterLogger) Warnf(format string, args ...any)  { l.Warn(fmt.Sprintf(format, args...)) }
func (l *WriterLogger) Error(message string)              { l.write("ERROR ", message) }
func (l *WriterLogger) Errorf(format string, args ...any) { l.Error(fmt.Sprintf(format, args...)) }
func (l *WriterLogger) V(level kindlog.Level) kindlog.InfoLogger {
	return infoLogger{l, level <= l.Verbosity}
}

type infoLogger struct {
	l       *WriterLogger
	enabled bool
}

func (i infoLogger) Info(message string) {
	if i.enabled {
		i.l.write("", message)
	}
}
func (i infoLogger) Infof(format string, args ...any) {
	if i.enabled {
		i.l.write("", fmt.Sprintf(format, args...))
	}
}
func (i infoLogger) Enabled() bool { return i.enabled }
